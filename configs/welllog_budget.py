r"""Label-budget study: warm vs cold fine-tuning of CurveNet at several label budgets and
seeds, one shared pretraining (denoise, then the supervised synthetic stage).

  python -m ssl_seg.main --config=configs/welllog_budget.py --workdir=runs/budget
  python -m launch.report runs/budget

Warm fine-tunes start from the synthetic stage's whole network (as in `welllog_demo`), cold ones
from random init; both train for the same number of optimizer steps (`finetune_steps`) on the
same labelled logs. `from_stage=DIR` skips the shared stages and grafts from that finished
`synthetic` stage directory instead (e.g. runs/demo/synthetic).

A scaled-down analogue of the seed's 200-2000 annotated curves: budgets of labelled logs (two
annotated curves each). Every fine-tune is a stage named finetune_<arm>_b<budget>_s<seed> and
tagged (arm, budget, seed) so `launch.report` can average over seeds. Each seed draws its
labelled logs from a pool of `pool` rendered logs (budgets nest within a seed: the 4 logs are
among the 12), so the spread over seeds includes the choice of labels, as in the seed study.
Arguments: budgets=2/4/12 (labelled logs, '/'-separated), seeds=3, pool=96, scale=1.0,
finetune_steps=300, variant, from_stage.
"""

import ml_collections

from configs import common, welllog_demo


def get_config(arg=None):
  arg = common.parse_arg(arg, budgets="2/4/12", seeds=3, pool=96, scale=1.0, variant="small",
                         finetune_steps=300, from_stage="")
  demo = welllog_demo.get_config(f"scale={arg.scale},variant={arg.variant},"
                                 f"finetune_steps={arg.finetune_steps}")
  stages = {} if arg.from_stage else {"pretrain": demo.stages.pretrain,
                                      "synthetic": demo.stages.synthetic}
  for budget in (int(b) for b in arg.budgets.split("/")):
    for seed in range(arg.seeds):
      for arm, template in (("warm", demo.stages.finetune_warm),
                            ("cold", demo.stages.finetune_cold)):
        st = ml_collections.ConfigDict(template.to_dict())
        st.data.num_train, st.data.num_labels = arg.pool, budget
        # The same optimizer steps at every budget (fewer labels, more passes over them): the
        # demo's fine-tune epochs are `data.epoch_steps` long whatever the number of logs.
        st.eval.every_epochs = max(1, st.epochs // 5)
        st.init_from.stage = template.init_from.stage
        if arm == "warm" and arg.from_stage:
          st.init_from.stage = arg.from_stage
        st.tags = ml_collections.ConfigDict(dict(arm=arm, budget=budget, seed=seed))
        stages[f"finetune_{arm}_b{budget}_s{seed}"] = st
  # Each fine-tune has its own seed (label subset, init, batch order); pretraining is shared.
  offsets = {name: st.tags.seed for name, st in stages.items() if "tags" in st}
  return common.experiment(stages, seed_offsets=offsets)
