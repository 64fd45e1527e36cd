from alignpatterns import pipeline, preflight

pipeline.setup(snakemake.log[0], snakemake.threads)
preflight.check_job(snakemake)  # fail before any work if the job cannot fit its memory
pipeline.extract(
    snakemake.params.cfg,
    snakemake.wildcards.model,
    snakemake.input.frames,
    snakemake.output[0],
    threads=snakemake.threads,
)
