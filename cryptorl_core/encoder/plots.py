"""Training charts of the masked autoencoder."""

from __future__ import annotations

from cryptorl_core.plotting import figure_png, new_figure


def loss_curve_png(history: list[dict], best_epoch: int) -> bytes:
    """Train and eval reconstruction loss per epoch, best epoch marked, as PNG bytes."""
    epochs = [h["epoch"] for h in history]
    fig, (ax,) = new_figure((6, 3.2), 90)
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    ax.plot(epochs, [h["eval_loss"] for h in history], marker="o", label="eval")
    ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best (epoch {best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("masked MSE")
    ax.set_title("MAE reconstruction loss")
    ax.legend()
    return figure_png(fig)
