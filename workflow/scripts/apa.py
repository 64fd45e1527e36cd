from alignpatterns import pipeline, preflight

pipeline.setup(snakemake.log[0], snakemake.threads)
preflight.check_job(snakemake)  # fail before any work if the job cannot fit its memory
pipeline.apa(
    snakemake.params.cfg,
    snakemake.wildcards.measure,
    snakemake.input.model_brain,
    snakemake.input.brain_brain,
    snakemake.input.ceilings,
    snakemake.input.nulls,
    snakemake.output.apa,
    snakemake.output.summary,
    snakemake.output.nulls,
    snakemake.output.confusion,
    boot_paths=snakemake.input.boots,
)
