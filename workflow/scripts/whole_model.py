from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.whole_model(
    snakemake.params.cfg,
    snakemake.params.measures,
    snakemake.wildcards.model,
    snakemake.input.features,
    snakemake.input.model_brain,
    snakemake.input.brain_brain,
    snakemake.input.info,
    snakemake.output,
)
