"""Training on real MNIST, found through the package's own search path."""

from __future__ import annotations


import nnbackend as nb


def test_mlp_reaches_95_percent_on_10000_real_mnist_images(mnist_dir):
    split = nb.data.paper_split(nb.data.load("mnist", download=False))
    model = nb.Sequential([nb.layers.Dense(784, 128, "relu"), nb.layers.Dense(128, 10)], backend="numpy", seed=0)
    trainer = nb.Trainer(model, nb.losses.CrossEntropy(), nb.optimizers.Adam(0.002))
    history = trainer.fit(split.x_train[:10000], split.y_train[:10000], validation=(split.x_val, split.y_val),
                          epochs=15, batch_size=64, verbose=0)
    assert history.val_accuracy[-1] >= 0.95, history.val_accuracy
    report = nb.metrics.classification_report(split.y_test, trainer.predict(split.x_test))
    assert report.weighted["f1"] >= 0.94


def test_shipped_sample_trains_offline():
    data = nb.data.load("mnist-sample", download=False)
    split = nb.data.official_split(data, validation_fraction=0.2)
    def train(layers):
        model = nb.Sequential(layers, backend="numpy", seed=0)
        return nb.Trainer(model).fit(split.x_train, split.y_train, validation=(split.x_val, split.y_val),
                                     epochs=5, batch_size=64, verbose=0).val_accuracy[-1]

    hidden = train([nb.layers.Dense(784, 64, "relu"), nb.layers.Dense(64, 10)])
    linear = train([nb.layers.Dense(784, 10)])  # 0.864 here: what a broken hidden layer would still reach
    assert hidden >= 0.89 and hidden >= linear + 0.02, (hidden, linear)
