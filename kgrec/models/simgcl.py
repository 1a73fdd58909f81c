"""SimGCL and XSimGCL: LightGCN with contrastive views made by uniform noise in every layer.

- **SimGCL** (Yu et al., "Are Graph Augmentations Necessary? Simple Graph Contrastive
  Learning for Recommendation", SIGIR 2022): the ranking loss is trained on the clean
  LightGCN pass; two more passes, each with fresh noise added at every layer, are the two
  views contrasted by InfoNCE.
- **XSimGCL** (Yu et al., "XSimGCL: Towards Extremely Simple Graph Contrastive Learning for
  Recommendation", TKDE 2023): one noisy pass serves both losses: the ranking loss is trained
  on its final vectors, and its layer ``cl_layer`` output is contrasted with its final one
  (a cross-layer contrast, so one propagation per step instead of three).

Noise: after layer ``l``'s propagation each row ``x`` gets ``sign(x) * n / ||n|| * eps``,
``n`` uniform in ``[0, 1)^d`` (:func:`perturb`): a vector of length ``eps`` that stays in
``x``'s orthant, so it rotates ``x`` by a small angle without flipping it (the papers' "the
same hyperoctant"). Only training steps are perturbed: :meth:`forward` (evaluation, serving)
is the clean pass.

The contrast (:func:`info_nce`) runs over the step's unique users and unique positive items
separately (shared negatives of ``train.loss: sampled_softmax`` are not contrasted), each
view's rows L2-normalised, positive = the same node in the other view, the batch's other
nodes the negatives, on cosine / ``temperature``; the two means are summed (as both
reference implementations do) and the objective adds ``cl_weight`` x that
(:class:`kgrec.train.objectives.ContrastiveTerm`, logged as ``cl``).

Final vectors: the XSimGCL paper leaves the layer-0 embedding ``E(0)`` out of the final
vector, and both papers' code (SELFRec, by the papers' first author, and RecBole-GNN) does
so for both models, for the clean pass as for the noisy ones: the mean of layers ``1..L``.
Both models do the same by default; ``input_layer: true`` averages layers ``0..L`` as
LightGCN does (then ``simgcl`` with ``eps: 0`` and ``cl_weight: 0`` is LightGCN exactly).

Training budget: the contrast is on cosine, whose gradient grows as the vectors shrink, and
LightGCN's initial vectors are small, so for the first few hundred steps it outweighs the
ranking loss and the ranking barely moves (on Last.FM at ``train.lr: 0.005``, 15 epochs of
2,048 pairs, random split seed 0, test Recall@20: lightgcn 0.324, simgcl 0.117, simgcl at
``lr: 0.02`` 0.265, xsimgcl 0.392). The papers train for thousands of steps; budget epochs
(or the learning rate) accordingly.

Defaults (``model.simgcl.*``, ``model.xsimgcl.*``), from the reference code:

==============  =======  ========  ==========================================================
option          simgcl   xsimgcl   source
==============  =======  ========  ==========================================================
``eps``         0.1      0.2       SELFRec ``conf/{SimGCL,XSimGCL}.yaml`` and RecBole-GNN
                                   ``properties/model/{SimGCL,XSimGCL}.yaml`` agree
``cl_weight``   0.5      0.2       simgcl: SELFRec and RecBole-GNN (``lambda: 0.5``);
                                   xsimgcl: SELFRec (``lambda: 0.2``; RecBole-GNN has 0.1)
``temperature`` 0.2      0.2       simgcl: both (SELFRec hard-codes 0.2); xsimgcl:
                                   RecBole-GNN (SELFRec's conf has 0.15)
``cl_layer``    -        1         both (``l_star`` / ``layer_cl``)
==============  =======  ========  ==========================================================

The InfoNCE is a mean over the batch's unique nodes as in SELFRec and RecBole-GNN's XSimGCL
(RecBole-GNN's SimGCL sums it instead, which scales its ``lambda`` by the batch size).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from kgrec.config import Config, ModelConfig
from kgrec.errors import ConfigError
from kgrec.models.base import Encoded, GraphInputs, PairBatch
from kgrec.models.lightgcn import LightGCN
from kgrec.models.ops import propagate
from kgrec.models.registry import MODELS


@dataclass
class SimGCLOptions:
    """``simgcl``'s options (defaults and their sources: :mod:`kgrec.models.simgcl`).

    Attributes:
        eps: the noise radius: each perturbation row has this L2 norm (0: no noise).
        cl_weight: ``lambda``, the contrastive loss's weight in the objective (0: none, and
            no views are propagated).
        temperature: the InfoNCE's temperature on cosine similarities.
        input_layer: average the layer-0 embedding into the final vector too (LightGCN's
            mean over ``0..L``); the papers' code averages layers ``1..L`` only.
    """

    eps: float = 0.1
    cl_weight: float = 0.5
    temperature: float = 0.2
    input_layer: bool = False

    _at = "model.simgcl"

    def check(self) -> None:
        if not self.eps >= 0:
            raise ConfigError(f"{self._at}.eps: {self.eps} must be >= 0", field=f"{self._at}.eps")
        if not self.cl_weight >= 0:
            raise ConfigError(f"{self._at}.cl_weight: {self.cl_weight} must be >= 0",
                              field=f"{self._at}.cl_weight")
        if not self.temperature > 0:
            raise ConfigError(f"{self._at}.temperature: {self.temperature} must be > 0",
                              field=f"{self._at}.temperature")


@dataclass
class XSimGCLOptions(SimGCLOptions):
    """``xsimgcl``'s options: ``simgcl``'s (with XSimGCL's defaults), and

    Attributes:
        cl_layer: the layer (``1..model.layers``) whose noisy output is contrasted with the
            final vector.
    """

    eps: float = 0.2
    cl_weight: float = 0.2
    temperature: float = 0.2
    input_layer: bool = False
    cl_layer: int = 1

    _at = "model.xsimgcl"

    def check(self) -> None:
        super().check()
        if self.cl_layer < 1:
            raise ConfigError(f"{self._at}.cl_layer: {self.cl_layer} must be >= 1",
                              field=f"{self._at}.cl_layer")


def perturb(x: Tensor, eps: float) -> Tensor:
    """The noise added to propagated vectors ``x`` ``[N, d]``: ``sign(x) * n / ||n||_2 *
    eps`` per row, ``n`` uniform in ``[0, 1)^d`` (torch's global generator, so a run's seed
    fixes it). ``[N, d]``; a row's norm is ``eps`` where ``x`` has no zero entry."""
    return torch.sign(x) * F.normalize(torch.rand_like(x), dim=-1) * eps


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """InfoNCE between two views ``a``, ``b`` ``[N, d]`` of the same ``N`` nodes: the mean
    over ``i`` of ``-log(exp(s_ii) / sum_j exp(s_ij))``, ``s_ij = cos(a_i, b_j) /
    temperature``. A scalar."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature  # [N, N]
    # cross-entropy against the diagonal is that formula, with a stable log-sum-exp
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))


@dataclass
class Views:
    """The two views a step contrasts: ``first``, ``second`` ``[U + I, d]`` (users first)."""

    first: Tensor
    second: Tensor


@MODELS.register("simgcl")
class SimGCL(LightGCN):
    """SimGCL: LightGCN trained with a contrast between two noise-perturbed passes.

    Propagation is LightGCN's (the symmetric CSR adjacency, so also
    :class:`~kgrec.models.capabilities.Propagates`); it is
    :class:`~kgrec.models.capabilities.Contrastive`.

    Args:
        inputs: sizes and training interactions (the propagation graph).
        dim: embedding size ``d``.
        layers: propagation layers ``L`` (>= 1 unless ``input_layer``).
        eps, cl_weight, temperature, input_layer: :class:`SimGCLOptions`.
    """

    Options = SimGCLOptions

    def __init__(self, inputs: GraphInputs, dim: int = 64, layers: int = 2, eps: float = 0.1,
                 cl_weight: float = 0.5, temperature: float = 0.2,
                 input_layer: bool = False) -> None:
        super().__init__(inputs, dim, layers)
        self.eps, self.cl_weight, self.temperature = eps, cl_weight, temperature
        self.input_layer = input_layer

    @classmethod
    def from_config(cls, cfg: ModelConfig, inputs: GraphInputs, *, device: str = "auto",
                    progress: bool = True) -> SimGCL:
        # the options' fields are the constructor's keywords (XSimGCL's add cl_layer)
        return cls(inputs, cfg.dim, cfg.layers, **dataclasses.asdict(cfg.options))

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        o = cfg.model.options
        if cfg.model.layers < 1 and not o.input_layer:
            raise ConfigError(f"model.layers: {cls.name} averages layers 1..L, so it needs "
                              f"model.layers >= 1 (or {o._at}.input_layer: true)",
                              field="model.layers")

    # ------------------------------------------------------------- propagation
    def layers_out(self, eps: float, keep: int | None = None,
                   trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor | None]:
        """One pass: the final vectors ``[U + I, d]`` (the mean of layers ``1..L``, or
        ``0..L`` under ``input_layer``) and layer ``keep``'s output ``[U + I, d]`` (``None``
        unless asked), with :func:`perturb` noise of radius ``eps`` after every layer
        (0: the clean pass). ``trace``: :meth:`RecModel.forward`'s."""
        x = self.embedding.weight
        total = x if self.input_layer else torch.zeros_like(x)
        kept = None
        n = self.layers + 1 if self.input_layer else self.layers
        for layer in range(1, self.layers + 1):
            if trace is not None:
                # what a new user's fold-in reads (kgrec.recommender.newusers): the sum of these
                # over L + 1, the LightGCN mean; without layer 0 the mean is over L layers
                trace.append(x[self.num_users:] * ((self.layers + 1) / n))
            x = propagate(self.adj, x)
            if eps > 0:
                x = x + perturb(x, eps)
            total = total + x
            if layer == keep:
                kept = x
        return total / n, kept

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return torch.split(x, [self.num_users, x.shape[0] - self.num_users])

    def forward(self, trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """The clean pass (never noise, so evaluation is deterministic): users ``[U, d]``,
        items ``[I, d]``."""
        out, _ = self.layers_out(0.0, trace=trace)
        return self._split(out)

    def encode_batch(self) -> Encoded:
        """The clean pass for the ranking, and (training, ``cl_weight > 0``) two noisy
        passes as the contrast's views (``private``: :class:`Views`)."""
        clean, _ = self.layers_out(0.0)
        views = None
        if self.training and self.cl_weight > 0:
            views = Views(self.layers_out(self.eps)[0], self.layers_out(self.eps)[0])
        return Encoded(self._split(clean), private=views)

    # ------------------------------------------------------------- the contrast
    def contrastive_loss(self, enc: Encoded, batch: PairBatch) -> Tensor:
        """The step's unweighted contrast: InfoNCE over the batch's unique users plus
        InfoNCE over its unique positive items, between ``enc.private``'s two views. A
        scalar (0 where the step made no views)."""
        views: Views | None = enc.private
        if views is None:
            return enc.propagated[0].new_zeros(())
        users = torch.unique(batch.users)
        items = torch.unique(batch.pos) + self.num_users
        return (info_nce(views.first[users], views.second[users], self.temperature)
                + info_nce(views.first[items], views.second[items], self.temperature))


@MODELS.register("xsimgcl")
class XSimGCL(SimGCL):
    """XSimGCL: one noisy LightGCN pass ranks, and its layer ``cl_layer`` is contrasted with
    its final vectors.

    Args:
        inputs, dim, layers, eps, cl_weight, temperature, input_layer: :class:`SimGCL`'s.
        cl_layer: :class:`XSimGCLOptions`.
    """

    Options = XSimGCLOptions

    def __init__(self, inputs: GraphInputs, dim: int = 64, layers: int = 2, eps: float = 0.2,
                 cl_weight: float = 0.2, temperature: float = 0.2, input_layer: bool = False,
                 cl_layer: int = 1) -> None:
        super().__init__(inputs, dim, layers, eps, cl_weight, temperature, input_layer)
        self.cl_layer = cl_layer

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        super().check_config(cfg)
        o = cfg.model.options
        if o.cl_layer > cfg.model.layers:
            raise ConfigError(f"{o._at}.cl_layer: {o.cl_layer} is beyond model.layers "
                              f"({cfg.model.layers})", field=f"{o._at}.cl_layer")

    def encode_batch(self) -> Encoded:
        """One pass, noisy while training: the ranking reads its final vectors, and
        ``private`` holds (final, layer ``cl_layer``) as the contrast's views."""
        eps = self.eps if self.training else 0.0
        final, kept = self.layers_out(eps, keep=self.cl_layer)
        views = Views(final, kept) if self.training and self.cl_weight > 0 else None
        return Encoded(self._split(final), private=views)
