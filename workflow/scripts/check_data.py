from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.check_data(snakemake.params.cfg, snakemake.output.table, snakemake.output.info)
