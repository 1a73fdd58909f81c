"""The config's sections other than the model's: data, train, eval, meta."""

from __future__ import annotations

from dataclasses import dataclass, field

from kgrec.errors import ConfigError


@dataclass
class DataConfig:
    """Which data, and how it is split.

    Attributes:
        dataset: a bundled dataset name, a recipe path, or a Neo4j URI (``bolt://...``: the
            graph is read from the database; ``bolt://host:7687#NAME`` reads dataset NAME
            of a database holding several).
        split: a strategy registered in :data:`kgrec.data.SPLITS`, which checks it and the
            options below (:func:`kgrec.data.check_split_params`, run by
            :meth:`Config.check`). Built in: ``given``, ``random`` (per user), ``temporal``
            (global time cut), ``user_temporal`` (each user's latest), ``cold_item``,
            ``cold_user``, ``cross_domain`` (the transfer protocol, see ``target``), ``ctr``
            (the RippleNet/KGCN click-through protocol: labelled rows cut 6:2:2 with
            ``valid=test=0.2``; reports AUC and F1).
        valid, test: fractions held out for validation and test.
        seed: the split's seed (independent of the training seed).
        shots: for ``cold_item`` / ``cold_user``: support links each held-out node keeps in
            training (the few-shot protocol; 0 = truly cold); for ``cross_domain``: target
            links each held-out user keeps.
        target: for ``cross_domain``: the target item domain. A share ``valid`` / ``test`` of
            its users keeps only ``shots`` target links in training, beside all their links in
            the other (source) domains; evaluation ranks the target domain's items.
        target_only: for ``cross_domain``: train without the source domains' links (the
            single-domain baseline on the same held-out links).
        warm: for ``cold_item`` / ``cold_user``: also hold out a share ``valid`` / ``test``
            of each user's links to warm nodes, so one split measures the cold, warm and
            overall settings of the cold-start literature (:func:`kgrec.split`).
        noise: noise applied to the training data after splitting (validation and test stay
            clean; :mod:`kgrec.data.noise`): ``inter=S`` replaces a share S of the training
            pairs with random ones, ``kg=S`` shuffles the relations of a share S of the KG
            triples. Seeded by ``seed``, so a saved model's split rebuilds exactly.
        data_dir: folder holding the datasets (default ``$KGREC_DATA_DIR``).
        events: an event log written by ``kgrec serve`` (clicks and new items logged after
            the dataset was made): its interactions, users and items are added to the graph
            before the split (:func:`kgrec.ingest.events.with_events`).
    """

    dataset: str = "lastfm-hetrec-kg"
    split: str = "random"
    valid: float = 0.1
    test: float = 0.1
    seed: int = 0
    shots: int = 0
    target: str = ""
    target_only: bool = False
    warm: bool = False
    noise: list[str] = field(default_factory=list)
    data_dir: str | None = None
    events: str | None = None

    def check(self) -> None:
        """The ranges of the fields; the split's name and which options it takes are the data
        layer's whole-config check (:func:`kgrec.data.check_split_params`)."""
        self.check_ranges(self.valid, self.test, self.shots)
        self.noise_levels()

    @staticmethod
    def check_ranges(valid: float, test: float, shots: int) -> None:
        """``valid`` and ``test`` in [0, 1) and together below 1, ``shots`` >= 0 (any split;
        :func:`kgrec.split` checks its arguments with this too)."""
        for name, v in (("valid", valid), ("test", test)):
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"data.{name}: {v} must be in [0, 1)", field=f"data.{name}")
        if valid + test >= 1.0:
            raise ConfigError("data.valid + data.test must be below 1", field="data.valid")
        if shots < 0:
            raise ConfigError(f"data.shots: {shots} must be >= 0", field="data.shots")

    def noise_levels(self) -> list[tuple[str, float]]:
        """``data.noise`` parsed: ``[(kind, share)]``; raises naming the bad entry."""
        out = []
        for item in self.noise:
            kind, sep, raw = item.partition("=")
            try:
                share = float(raw)
            except ValueError:
                share = -1.0
            if not sep or kind not in ("inter", "kg") or not 0.0 <= share <= 1.0:
                raise ConfigError(f"data.noise: {item!r} is not inter=<share> or kg=<share> "
                                  "with a share in [0, 1]")
            out.append((kind, share))
        return out


@dataclass
class TrainConfig:
    """Optimisation.

    Attributes:
        epochs: maximum epochs.
        batch_size: positive pairs per step (one sampled negative each).
        loss: the ranking loss: ``bpr``, ``softmax`` (sampled softmax over the batch's
            items on cosine similarity) or ``sampled_softmax`` (against ``negatives`` items
            shared by the batch: the loss for large batches), see
            :mod:`kgrec.models.losses`.
        temperature: the softmax losses' temperature.
        negatives: ``sampled_softmax``'s shared negatives per step.
        lr: Adam learning rate.
        reg: L2 weight on the batch's input embeddings.
        patience: evaluations without improvement before early stopping (so training runs
            up to ``patience * eval_every`` epochs past the best one).
        eval_every: epochs between validation evaluations.
        eval_every_seconds: also validate at the end of any epoch that ends this many seconds
            after the last validation (0: off). On a large dataset, where 5 epochs take an
            hour, this bounds how stale the kept model can get.
        seed: the training seed (weights, sampling).
        device: ``auto``, ``cpu`` or ``cuda``.
        deterministic: use PyTorch's deterministic kernels, so the same seed gives bit-equal
            weights (CPU: same speed within noise; on CUDA some kernels only warn).
        adv_eps: adversarial feature perturbation (``kggnn``/``hgnn``): L2 radius of the
            perturbation of each layer-0 input row (fused content + id); 0 = off (the
            default until the robustness benchmark shows it helps). Absolute, in the units
            of those rows (user and item rows reach norms of about 0.6-0.7 on Last.FM; a
            radius of 0.5 collapsed training there, 0.1 was the best measured).
        adv_weight: weight of the adversarial ranking loss.
        adv_steps: 1 = FGSM/APR (one normalised gradient step); more = PGD steps.
    """

    epochs: int = 300
    batch_size: int = 2048
    loss: str = "bpr"
    temperature: float = 0.5
    negatives: int = 1024
    lr: float = 5e-3
    reg: float = 1e-4
    patience: int = 6
    eval_every: int = 5
    eval_every_seconds: float = 0.0
    seed: int = 0
    device: str = "auto"
    deterministic: bool = True
    adv_eps: float = 0.0
    adv_weight: float = 1.0
    adv_steps: int = 1

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self.eval_every < 1:
            raise ConfigError("train.epochs, batch_size, patience and eval_every must be >= 1")
        if self.eval_every_seconds < 0:
            raise ConfigError("train.eval_every_seconds must be >= 0 (0: off)")
        if self.negatives < 1:
            raise ConfigError(f"train.negatives: {self.negatives} must be >= 1")
        if not self.temperature > 0:
            raise ConfigError(f"train.temperature: {self.temperature} must be > 0")
        if self.lr <= 0 or self.reg < 0:
            raise ConfigError("train.lr must be > 0 and train.reg >= 0")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"train.device: {self.device!r} is not auto, cpu or cuda")
        if self.adv_eps < 0 or self.adv_weight < 0 or self.adv_steps < 1:
            raise ConfigError("train.adv_eps and train.adv_weight must be >= 0, "
                              "train.adv_steps >= 1")


@dataclass
class EvalConfig:
    """Evaluation.

    Attributes:
        ks: cut-offs reported.
        metric: the validation metric for early stopping and model selection.
        batch_users: users scored per chunk (bounds memory).
    """

    ks: list[int] = field(default_factory=lambda: [10, 20])
    metric: str = "ndcg@20"
    batch_users: int = 1024

    def check(self) -> None:
        # the metric's name is checked by kgrec.evaluate (it owns the metrics), its shape here
        if not self.ks or min(self.ks) < 1:
            raise ConfigError("eval.ks must list cut-offs >= 1")
        name, _, k = self.metric.partition("@")
        if not name or not k.isdigit():
            raise ConfigError(f"eval.metric: {self.metric!r} is not <metric>@<k>")


@dataclass
class MetaConfig:
    """Few-shot meta-episodes (:mod:`kgrec.train.meta`; model ``hgnn``).

    Attributes:
        mode: ``off`` (held-out nodes of a few-shot split are ordinary nodes with their K
            links in training); ``finetune`` (no meta-training; at evaluation held-out nodes
            are encoded as cold nodes and fine-tuned on their K support links with
            ``inner_steps`` steps of ``inner_lr``); ``meta`` (the same evaluation after
            meta-training on episodes, with learned step sizes).
        side: episodes over ``user``, ``item``, ``both``, or ``auto`` (the side the split holds
            out; users otherwise).
        shots: the K values episodes draw from (K = 0: content and KG only).
        query: query links per task.
        tasks: tasks per training step (per side).
        inner_steps: adaptation steps.
        inner_lr: the inner step size (meta: its starting value).
        learn_inner_lr: learn a step size per dimension (Meta-SGD) in ``meta`` mode.
        weight: weight of the meta loss against the multi-task loss.
    """

    mode: str = "off"
    side: str = "auto"
    shots: list[int] = field(default_factory=lambda: [0, 1, 3, 5])
    query: int = 10
    tasks: int = 64
    inner_steps: int = 3
    inner_lr: float = 0.5
    learn_inner_lr: bool = True
    weight: float = 1.0

    def check(self) -> None:
        if self.mode not in ("off", "finetune", "meta"):
            raise ConfigError(f"meta.mode: {self.mode!r} is not off, finetune or meta")
        if self.side not in ("auto", "user", "item", "both"):
            raise ConfigError(f"meta.side: {self.side!r} is not auto, user, item or both")
        if not self.shots or min(self.shots) < 0:
            raise ConfigError("meta.shots: list one or more K >= 0")
        if self.query < 1 or self.tasks < 1 or self.inner_steps < 0:
            raise ConfigError("meta.query and meta.tasks must be >= 1, meta.inner_steps >= 0")
        if self.inner_lr <= 0 or self.weight < 0:
            raise ConfigError("meta.inner_lr must be > 0 and meta.weight >= 0")


