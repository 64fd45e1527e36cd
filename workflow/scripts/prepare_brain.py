from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.prepare_brain(
    snakemake.params.cfg, snakemake.wildcards.subject, snakemake.output[0], snakemake.input.info
)
