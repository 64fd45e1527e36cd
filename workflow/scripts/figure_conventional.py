from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.figure("conventional", snakemake.params.cfg, snakemake.wildcards.measure,
                snakemake.input[0], snakemake.output.png)
