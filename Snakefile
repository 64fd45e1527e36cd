include: "workflow/Snakefile"


# Snakemake keeps the default target of the main Snakefile only; point it at `all`.
workflow.default_target = "all"
