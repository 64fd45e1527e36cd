from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
cfg = snakemake.params.cfg
pipeline.gather_tables(snakemake.input.apa, "apa", snakemake.output.apa, cfg)
pipeline.gather_tables(snakemake.input.summary, "apa_summary", snakemake.output.summary, cfg)
pipeline.gather_tables(snakemake.input.nulls, "apa_nulls", snakemake.output.nulls, cfg)
pipeline.gather_tables(
    snakemake.input.confusion, "apa_confusion", snakemake.output.confusion, cfg
)
