from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.ceilings(snakemake.params.cfg, snakemake.input.subjects, snakemake.output[0])
