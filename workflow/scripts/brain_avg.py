from alignpatterns import pipeline, preflight

pipeline.setup(snakemake.log[0], snakemake.threads)
preflight.check_job(snakemake)  # fail before any work if the job cannot fit its memory
pipeline.brain_avg_scores(
    snakemake.params.cfg,
    snakemake.params.measures,
    snakemake.wildcards.subject,
    snakemake.input.subjects,
    snakemake.input.info,
    snakemake.output,
)
