from alignpatterns import pipeline, preflight

pipeline.setup(snakemake.log[0], snakemake.threads)
preflight.check_job(snakemake)  # fail before any work if the job cannot fit its memory
pipeline.brain_within(
    snakemake.params.cfg,
    snakemake.wildcards.measure,
    snakemake.input.subjects,
    snakemake.input.info,
    snakemake.output[0],
)
