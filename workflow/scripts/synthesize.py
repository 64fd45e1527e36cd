from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.synthesize(snakemake.params.cfg, snakemake.output[0])
