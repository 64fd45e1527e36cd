from alignpatterns import pipeline, preflight

pipeline.setup(snakemake.log[0], snakemake.threads)
preflight.check_job(snakemake)  # fail before any work if the job cannot fit its memory
pipeline.ceilings(snakemake.params.cfg, snakemake.input.subjects, snakemake.output[0],
                  snakemake.input.info)
