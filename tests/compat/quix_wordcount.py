"""A Quix Streams word count with exactly-once processing, run as its own process by
test_quixstreams.py: `python quix_wordcount.py BOOTSTRAP STATE_DIR SECONDS`."""

from __future__ import annotations

import sys
import threading

from quixstreams import Application


def main() -> None:
    bootstrap, state_dir, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    app = Application(
        broker_address=bootstrap,
        consumer_group="wordcount",
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        state_dir=state_dir,
        commit_interval=0.2,
    )
    sentences = app.topic("sentences", value_deserializer="str")
    counts = app.topic("counts", value_serializer="json")
    sdf = app.dataframe(sentences)
    sdf = sdf.apply(lambda s: [(w, 1) for w in s.split()], expand=True)
    sdf = sdf.group_by(lambda kv: kv[0], name="word")

    def count(kv: tuple[str, int], state) -> dict:  # noqa: ANN001
        n = state.get("n", 0) + 1
        state.set("n", n)
        return {"word": kv[0], "n": n}

    sdf = sdf.apply(count, stateful=True)
    sdf.to_topic(counts)
    threading.Timer(seconds, app.stop).start()
    app.run()


if __name__ == "__main__":
    main()
