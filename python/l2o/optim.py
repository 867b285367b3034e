"""torch.optim.Optimizer subclasses over l2o's update rules (l2o::optim::RuleOptimizer in C++)."""
import torch

from . import _C


class _RuleOptimizer(torch.optim.Optimizer):
    """Common part of Rule and Learned: the C++ adapter holds the very tensors of the parameter groups
    (no copy) and updates them in place from their .grad; a parameter without .grad counts as zero."""

    def __init__(self, params, rule):
        super().__init__(params, {})
        self._rule = rule
        self._cpp = _C.RuleOptimizer(self._params(), rule)
        # The steps' large temporaries would otherwise be page-faulted in again on every step
        # (l2o.keep_freed_memory; L2O_OS_MALLOC=1 keeps glibc's defaults).
        _C.keep_freed_memory()

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def add_param_group(self, param_group):
        if hasattr(self, "_cpp"):
            raise _C.Error("l2o optimizers take all their parameters at construction")
        super().add_param_group(param_group)

    @property
    def rule(self):
        """The spec string of the update rule, e.g. 'adam:lr=0.001'."""
        return self._rule.spec

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._cpp.step()
        return loss

    def state_dict(self):
        """{'rule': spec, 'state': {'step', 'slots'} or None before the first step, 'param_groups': [...]}."""
        groups = super().state_dict()["param_groups"]
        state = self._cpp.get_state() if self._cpp.initialised else None
        return {"rule": self._rule.spec, "state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        rule = state_dict.get("rule")
        if rule != self._rule.spec:
            raise _C.Error(f"optimizer state was saved for rule '{rule}' but this optimizer runs '{self._rule.spec}'")
        sizes = [len(g["params"]) for g in state_dict["param_groups"]]
        if sizes != [len(g["params"]) for g in self.param_groups]:
            raise _C.Error(f"optimizer state has parameter groups of sizes {sizes}, this optimizer "
                           f"{[len(g['params']) for g in self.param_groups]}")
        if state_dict["state"] is not None:
            state = state_dict["state"]
            self._cpp.set_state({"step": int(state["step"]),
                                 "slots": {k: [t.clone() for t in v] for k, v in state["slots"].items()}})

    def __repr__(self):
        return f"{type(self).__name__}({self._rule.spec})"


class Rule(_RuleOptimizer):
    """Any l2o update rule by spec string: Rule(model.parameters(), "adam:lr=1e-3"), "rmsprop", "nag", ...
    (l2o's hand-designed rules equal torch.optim's to float tolerance)."""

    def __init__(self, params, spec):
        super().__init__(params, _C.make_rule(spec))


class Learned(_RuleOptimizer):
    """A meta-trained optimizer from an l2o checkpoint: Learned(model.parameters(), "best.pt").
    l2o.shipped_checkpoint("mlp_lopt_generalist.pt") gives the path of the one shipped with l2o.
    overrides="max_log_lr=-3" runs the trained φ with some of its saved options replaced."""

    def __init__(self, params, checkpoint, overrides=""):
        self.checkpoint = str(checkpoint)
        super().__init__(params, _C.load_rule(self.checkpoint, overrides))
