from alignpatterns import pipeline

pipeline.setup(snakemake.log[0])
pipeline.gather_brain_within(
    snakemake.params.cfg,
    snakemake.input.tables,
    snakemake.input.brain_brain,
    snakemake.output.table,
    snakemake.output.summary,
)
