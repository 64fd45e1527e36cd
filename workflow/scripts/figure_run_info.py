from alignpatterns import pipeline
from alignpatterns.figures.run_info import write_run_info

pipeline.setup(snakemake.log[0], snakemake.threads)
write_run_info(snakemake.params.cfg, snakemake.output.html)
