from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.gather_alignment(
    snakemake.params.cfg,
    snakemake.input.model_brain,
    snakemake.input.brain_brain,
    snakemake.input.ceilings,
    snakemake.output.model_brain,
    snakemake.output.summary,
    snakemake.output.brain_brain,
)
