from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.frames(
    snakemake.params.cfg,
    snakemake.input.info,
    snakemake.output.frames,
    policy=snakemake.params.policy,
    threads=snakemake.threads,
)
