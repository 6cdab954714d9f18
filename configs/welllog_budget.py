r"""Label-budget study: warm (denoising-pretrained encoder) vs cold (random init) fine-tuning
of CurveNet at several label budgets and seeds, one shared pretraining.

  python -m ssl_seg.main --config=configs/welllog_budget.py --workdir=runs/budget
  python -m launch.report runs/budget

A scaled-down analogue of the seed's 200-2000 annotated curves: budgets of labelled logs (two
annotated curves each). Every fine-tune is a stage named finetune_<arm>_b<budget>_s<seed> and
tagged (arm, budget, seed) so `launch.report` can average over seeds. Each seed draws its
labelled logs from a pool of `pool` rendered logs (budgets nest within a seed: the 4 logs are
among the 12), so the spread over seeds includes the choice of labels, as in the seed study.
About 30 minutes on a 2-core CPU with the defaults; `scale=x` shrinks epochs for a quicker look.
Arguments: budgets=4/12/36 (labelled logs, '/'-separated), seeds=3, pool=96, scale=1.0.
"""

import ml_collections

from configs import common, welllog_demo


def get_config(arg=None):
  arg = common.parse_arg(arg, budgets="4/12/36", seeds=3, pool=96, scale=1.0, variant="small")
  demo = welllog_demo.get_config(f"scale={arg.scale},variant={arg.variant}")
  stages = {"pretrain": demo.stages.pretrain}
  for budget in (int(b) for b in arg.budgets.split("/")):
    for seed in range(arg.seeds):
      for arm, template in (("warm", demo.stages.finetune_warm),
                            ("cold", demo.stages.finetune_cold)):
        st = ml_collections.ConfigDict(template.to_dict())
        st.data.num_train, st.data.num_labels = arg.pool, budget
        st.init_from.stage = template.init_from.stage
        st.tags = ml_collections.ConfigDict(dict(arm=arm, budget=budget, seed=seed))
        stages[f"finetune_{arm}_b{budget}_s{seed}"] = st
  # Each fine-tune has its own seed (label subset, init, batch order); pretraining is shared.
  offsets = {name: st.tags.seed for name, st in stages.items() if "tags" in st}
  return common.experiment(stages, seed_offsets=offsets)
