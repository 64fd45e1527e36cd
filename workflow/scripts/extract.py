from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.extract(
    snakemake.params.cfg,
    snakemake.wildcards.model,
    snakemake.input.frames,
    snakemake.output[0],
    threads=snakemake.threads,
)
