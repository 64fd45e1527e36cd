from alignpatterns import pipeline
from alignpatterns.figures.render import render

pipeline.setup(snakemake.log[0], snakemake.threads)
tables = {k: v for k, v in snakemake.input.items() if k not in ("lib", "style")}
measures = snakemake.params.get("measures")
# per-measure kinds: one PNG (+ PDF beside it) per measure, as png_<i>; the others: png
pngs = ([(m, snakemake.output[f"png_{i}"]) for i, m in enumerate(measures)] if measures
        else [(None, snakemake.output.png)])
for measure, png in pngs:
    render(snakemake.params.kind, snakemake.params.cfg, tables, png, measure=measure,
           streams=snakemake.params.streams)
