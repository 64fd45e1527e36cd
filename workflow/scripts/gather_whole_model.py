from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
paths = snakemake.input.tables
pipeline.gather_tables(paths, "apa_whole_model", snakemake.output[0], snakemake.params.cfg)
