from alignpatterns import pipeline, preflight

pipeline.setup(snakemake.log[0], snakemake.threads)
preflight.check_job(snakemake)  # fail before any work if the job cannot fit its memory
pipeline.model_brain(
    snakemake.params.cfg,
    snakemake.wildcards.model,
    snakemake.input.features,
    snakemake.input.subject,
    snakemake.input.info,
    snakemake.output.scores,
    snakemake.output.null,
    snakemake.input.decomposed or None,
)
