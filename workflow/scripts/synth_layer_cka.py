from alignpatterns import pipeline

pipeline.setup(snakemake.log[0], snakemake.threads)
pipeline.synth_layer_cka(snakemake.params.cfg, snakemake.input.dataset,
                         list(snakemake.input.features), snakemake.output[0])
