"""The part of an exported script (`standalone.py`) that is the same for every candidate:
reading a table as tabpilot does, training the members fold by fold, scoring, saving and
predicting, and the command line (`train`, `predict`).

It is text, not code of this package: it runs inside the script, after the job's
settings (TARGET, CLASSES, FEATURES, ...), tabpilot's copied encoder, split, scoring and
stacking code, and the candidate's MEMBERS, STACK and WEIGHTS, which it reads as globals.
"""

RUNTIME = r'''
# -- reading, training, predicting ---------------------------------------------------------
class ScriptError(Exception):
    """A problem with the input: printed as one line, exit status 2."""


def read_table(path):
    """A table as tabpilot reads one: CSV (comma, semicolon, tab or bar; compressed or not),
    Parquet or JSON lines, with NA_VALUES read as missing."""
    name = str(path).lower()
    for ext in (".gz", ".bz2", ".xz", ".zst", ".zip"):
        name = name[: -len(ext)] if name.endswith(ext) else name
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".jsonl", ".ndjson", ".json")):
            return pd.read_json(path, lines=True)
        ext = "." + str(path).lower().rsplit(".", 1)[-1]
        first = ""  # a zip or zstd archive: comma-separated
        if ext not in (".zip", ".zst"):
            opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(ext, open)
            with opener(path, "rt", encoding="latin-1") as f:
                first = f.readline()
        counts = {d: first.count(d) for d in [",", ";", "\t", "|"]}
        sep = max(counts, key=counts.get) if max(counts.values()) else ","
        options = dict(sep=sep, na_values=NA_VALUES, keep_default_na=False,
                       float_precision="round_trip", low_memory=False)
        try:
            return pd.read_csv(path, **options)
        except UnicodeDecodeError:  # not UTF-8: Windows' Western European code page
            return pd.read_csv(path, encoding="cp1252", **options)
    except FileNotFoundError:
        raise ScriptError(f"{path} does not exist; check the path") from None
    except (ValueError, OSError) as exc:
        raise ScriptError(f"{path} could not be read: {str(exc).splitlines()[0]}") from None


def check_columns(df, names, where):
    missing = [c for c in names if c not in df.columns]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ScriptError(f"{where} lacks column(s) {shown}{more}; it needs every column "
                          f"the model reads: {', '.join(FEATURES)}")


def encode_target(values, target):
    """Class index per row (CLASSES' order), or the numbers for regression."""
    if CLASSES is None:
        y = pd.to_numeric(values, errors="coerce")
        if y.isna().any():
            raise ScriptError(f"regression needs a numeric target; {target!r} holds "
                              f"{values[y.isna()].iloc[0]!r}")
        return y.to_numpy(dtype=np.float64)
    index = {category_string(c): i for i, c in enumerate(CLASSES)}
    codes = np.array([index.get(category_string(v), -1) for v in values], dtype=np.int64)
    if (codes < 0).any():
        raise ScriptError(f"target {target!r} holds {values[codes < 0].iloc[0]!r}, which is "
                          f"not one of the job's classes {CLASSES}")
    return codes


def training_table(data, validation_data, target, weight_column):
    """Features, target, weights, and how many rows at the end are the validation table's."""
    frames = []
    for path in [data, validation_data] if validation_data else [data]:
        df = read_table(path)
        if target not in df.columns:
            raise ScriptError(f"{path} has no target column {target!r}; name it with --target")
        if weight_column and weight_column not in df.columns:
            raise ScriptError(f"{path} has no weight column {weight_column!r}; name it with "
                              "--sample-weight")
        check_columns(df, FEATURES, str(path))
        frames.append(df.loc[df[target].notna()])  # rows without a target are dropped
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else \
        frames[0].reset_index(drop=True)
    n_valid = len(frames[1]) if validation_data else None
    weights = None
    if weight_column:
        weights = pd.to_numeric(df[weight_column], errors="coerce").to_numpy(dtype=float)
        if np.isnan(weights).any() or (weights < 0).any():
            raise ScriptError(f"weight column {weight_column!r} must hold non-negative numbers")
    return df[FEATURES], encode_target(df[target], target), weights, n_valid


def probabilities(model, rows):
    """Class probabilities over every class of the job (a fold may lack a rare class)."""
    proba = np.asarray(model.predict_proba(rows), dtype=np.float64)
    full = np.zeros((len(proba), len(CLASSES)))
    full[:, np.asarray(model.classes_, dtype=int)] = proba
    return full


def fit_member(member, X, y, weights, split):
    """The member's validation predictions (every row, NaN outside the validation rows)
    and its fitted encoder and model(s): the fold models, averaged when predicting, or
    one model retrained on every training row."""
    rows = subsample(split.training_rows(), member.train_rows, SEED)
    encoder = member.new_encoder().fit(X.iloc[rows])
    X_enc = encoder.transform(X)
    oof = np.full((len(y), len(CLASSES)) if CLASSES else (len(y),), np.nan)
    models = []
    for fold, (train, valid) in enumerate(split.folds):
        train = subsample(train, member.train_rows, SEED + fold)
        rounds = member.rounds[fold] if member.rounds else None
        model = member.fit(X_enc, y, weights, train, valid, rounds)
        oof[valid] = member.predict(model, X_enc[valid])
        models.append(model)
    if member.refit:  # every training row, encoded by the encoder of the training part
        fit = member.refit_fit or member.fit
        models = [fit(X_enc, y, weights, split.refit_rows(), None, member.refit_rounds)]
    return oof, (encoder, models)


def as_saved(pred):
    """Validation predictions as the job kept them for ensembles and stacks (float32)."""
    return pred.astype(np.float32).astype(np.float64)


def normalised(raw):
    """Probabilities summing to 1 per row (float32 boosters sum to 1 only roughly)."""
    return raw / raw.sum(axis=1, keepdims=True) if CLASSES else raw


class FittedPipeline:
    """The fitted candidate: per single model an encoder and its model(s), the stack's
    level-2 model if any, and the decision threshold tuned on the validation predictions."""

    def __init__(self, fitted, stacker, threshold):
        self.fitted = fitted  # {name: (predict function, encoder, models)}
        self.stacker = stacker
        self.threshold = threshold

    def raw(self, X):
        """Probabilities (rows, classes) or values (rows,)."""
        raws = {}
        for name, (predict, encoder, models) in self.fitted.items():
            X_enc = encoder.transform(X)
            outs = [predict(model, X_enc) for model in models]
            raws[name] = normalised(outs[0] if len(outs) == 1 else np.mean(outs, axis=0))
        if self.stacker is not None:
            features = stack_features([raws[m] for m in STACK.members], ProblemType(PROBLEM_TYPE))
            raws[STACK.name] = normalised(stacker_predict(self.stacker, features,
                                                          len(CLASSES or [])))
        total = None
        for name, weight in WEIGHTS.items():
            total = weight * raws[name] if total is None else total + weight * raws[name]
        return normalised(total)

    def predict(self, X):
        raw = self.raw(X)
        if not CLASSES:
            return raw
        return np.asarray(CLASSES, dtype=object)[labels_from_proba(raw, self.threshold)]


def validation_score(preds, truth, weights, split):
    """The candidate's validation predictions, scored as the job scored them: a single
    model with the row weights; an ensemble or a stack on the members' float32
    predictions, without them. Returns (value, threshold, stacker)."""
    stacker = None
    if STACK is not None:
        problem_type = ProblemType(PROBLEM_TYPE)
        features = stack_features([as_saved(preds[m]) for m in STACK.members], problem_type)
        folds = stacking_folds(split, truth, CLASSES is not None, STACK.seed)
        fitted = fit_stack(features, truth, folds, problem_type, len(CLASSES or []))
        preds[STACK.name], stacker = fitted.oof, fitted.model
    if len(WEIGHTS) == 1 and STACK is None:
        pred = preds[next(iter(WEIGHTS))]
    else:
        pred = sum(w * (as_saved(preds[n]) if len(WEIGHTS) > 1 else preds[n])
                   for n, w in WEIGHTS.items())
        weights = None
    threshold = tune_threshold(METRIC, truth, pred, weights) if CLASSES and len(CLASSES) == 2 \
        else None
    return score(METRIC, truth, pred, weights, threshold), threshold, stacker


def train(args):
    X, y, weights, n_valid = training_table(args.data, args.validation_data, args.target,
                                            args.sample_weight)
    if VALIDATION_TABLE and n_valid is None:
        print("note: the job validated on a separate table; without --validation-data the "
              "split differs from the job's", file=sys.stderr)
    split = make_split(y, CLASSES is not None, VALIDATION_FRACTION, n_folds=N_FOLDS, seed=SEED,
                       n_valid_rows=n_valid)
    valid_rows = split.validation_rows()
    preds, fitted = {}, {}
    for member in MEMBERS:
        oof, (encoder, models) = fit_member(member, X, y, weights, split)
        preds[member.name] = oof[valid_rows]
        fitted[member.name] = (member.predict, encoder, models)
    value, threshold, stacker = validation_score(
        preds, y[valid_rows], None if weights is None else weights[valid_rows], split)
    line = f"{CANDIDATE}: validation {METRIC.name} = {value:.10g}"
    differs = False
    if LEADERBOARD is not None:
        difference = abs(value - LEADERBOARD)
        differs = not difference <= TOLERANCE
        line += (f", leaderboard {LEADERBOARD:.10g}, difference {difference:.1e} (tolerance "
                 f"{TOLERANCE:g}): {'DIFFERS' if differs else 'reproduced'}")
    print(f"{len(y)} rows, {len(split.folds)} fold(s), {len(valid_rows)} validation rows")
    print(line)
    os.makedirs(os.path.dirname(os.path.abspath(args.model_out)), exist_ok=True)
    joblib.dump({"candidate": CANDIDATE, "job": JOB, "pipeline": FittedPipeline(
        fitted, stacker, threshold), "validation": {METRIC.name: value}}, args.model_out)
    print(f"saved the fitted pipeline to {args.model_out}")
    if differs and args.check:
        raise SystemExit(1)


def predict(args):
    try:
        saved = joblib.load(args.model)
    except FileNotFoundError:
        raise ScriptError(f"{args.model} does not exist; `train` saves the pipeline "
                          "(model.joblib unless --model-out says otherwise)") from None
    if not isinstance(saved, dict) or saved.get("candidate") != CANDIDATE:
        raise ScriptError(f"{args.model} is not a pipeline this script saved ({CANDIDATE})")
    df = read_table(args.data)
    check_columns(df, FEATURES, str(args.data))
    pipeline = saved["pipeline"]
    raw = pipeline.raw(df[FEATURES])
    if CLASSES:
        out = pd.DataFrame({"predicted_label": np.asarray(CLASSES, dtype=object)[
            labels_from_proba(raw, pipeline.threshold)]})
        for i, label in enumerate(CLASSES):
            out[f"probability_{label}"] = raw[:, i]
    else:
        out = pd.DataFrame({"predicted_label": raw})
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    out.to_csv(args.output or sys.stdout, index=False)
    if args.output:
        print(f"wrote {len(out)} predictions to {args.output}", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("train", help="retrain, print the validation score, save")
    fit.add_argument("data", help="the training table (CSV, Parquet or JSON lines)")
    fit.add_argument("--target", default=TARGET, help=f"target column (default {TARGET!r})")
    fit.add_argument("--sample-weight", default=SAMPLE_WEIGHT, help="column of row weights")
    fit.add_argument("--validation-data", help="a separate validation table")
    fit.add_argument("--model-out", default="model.joblib", help="where to save the pipeline")
    fit.add_argument("--check", action="store_true",
                     help="exit with status 1 when the score differs from the leaderboard's")
    use = commands.add_parser("predict", help="predict with a saved pipeline")
    use.add_argument("model", help="a file `train` saved")
    use.add_argument("data", help="the table to predict (its feature columns)")
    use.add_argument("-o", "--output", help="CSV file to write (default: standard output)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")  # libraries' notices; the results are what counts
    try:
        (train if args.command == "train" else predict)(args)
    except ScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except BrokenPipeError:  # the reader of standard output stopped early (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
'''
