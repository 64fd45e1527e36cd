from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.apa_brain_avg(
    snakemake.params.cfg,
    snakemake.input.brain_brain,
    snakemake.input.scores,
    snakemake.input.ceilings,
    snakemake.output[0],
)
