from alignpatterns import pipeline
from alignpatterns.figures.render import render

pipeline.setup(snakemake.log[0], snakemake.threads)
tables = {k: v for k, v in snakemake.input.items() if k not in ("lib", "style")}
render(snakemake.params.kind, snakemake.params.cfg, tables, snakemake.output.png,
       measure=snakemake.wildcards.get("measure"), streams=snakemake.params.streams)
