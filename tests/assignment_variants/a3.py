"""Assignment 3 (a3_keras_rate): answer cells that differ from the reference and are right all the same."""

BUILD_MODEL_VARIANTS = {
    "Sequential built with add(), activation objects, a seeded Dropout": '''
def build_model(rate):
    model = keras.Sequential()
    model.add(keras.Input((784,)))
    model.add(keras.layers.Dense(units=256, activation=keras.activations.relu))
    model.add(keras.layers.Dropout(rate=rate, seed=1))
    model.add(keras.layers.Dense(units=10, activation=None))
    return model
''',
    "no Dropout layer at rate 0": '''
def build_model(rate):
    layers = [keras.Input(shape=(784,)), keras.layers.Dense(256, activation="relu")]
    if rate > 0:
        layers.append(keras.layers.Dropout(rate))
    layers.append(keras.layers.Dense(10))
    return keras.Sequential(layers)
''',
}

EXPERIMENT_VARIANTS = {  # run with `train` replaced by a look-up of the reference's trained networks
    "loops, and the best rate from the dict": '''
models = {}
val_scores = {}
for rate in RATES:
    models[rate] = train(rate)
    val_scores[rate] = scores(models[rate], x_val, y_val)
best_rate = min(val_scores, key=lambda rate: val_scores[rate][0])
best_model = models[best_rate]
test_loss, test_accuracy = scores(best_model, x_test, y_test)
''',
    "sorted by loss, then accuracy; the test scores unpacked by index": '''
models = dict(zip(RATES, map(train, RATES)))
val_scores = {rate: tuple(scores(model, x_val, y_val)) for rate, model in models.items()}
best_rate = sorted(RATES, key=lambda rate: (val_scores[rate][0], -val_scores[rate][1]))[0]
result = scores(models[best_rate], x_test, y_test)
test_loss = result[0]
test_accuracy = result[1]
''',
}
