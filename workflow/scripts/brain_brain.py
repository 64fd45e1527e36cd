from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.brain_brain(
    snakemake.params.cfg,
    snakemake.wildcards.measure,
    snakemake.wildcards.subject,
    snakemake.input.subjects,
    snakemake.input.info,
    snakemake.output[0],
)
