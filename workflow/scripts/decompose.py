from alignpatterns import pipeline, preflight

pipeline.setup(snakemake.log[0], snakemake.threads)
preflight.check_job(snakemake)  # fail before any work if the job cannot fit its memory
pipeline.decompose(snakemake.params.cfg, snakemake.input.features, snakemake.input.info,
                   snakemake.output[0])
