from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.model_brain(
    snakemake.params.cfg,
    snakemake.wildcards.model,
    snakemake.input.features,
    snakemake.input.subject,
    snakemake.input.info,
    snakemake.output.scores,
    snakemake.output.null,
)
