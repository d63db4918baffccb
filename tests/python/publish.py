"""Publishes JSON-lines files to Kafka topics, one message per line, keyed by
`dossier_id` (CONTRACT.md §1), as a portal would with any Kafka client.

    python3 publish.py --brokers 127.0.0.1:9092 TOPIC=FILE [TOPIC=FILE ...]
"""

import argparse
import json
import sys

from confluent_kafka import Producer


def publish(brokers, pairs):
    producer = Producer({"bootstrap.servers": brokers, "acks": "all", "linger.ms": 20,
                         # The contract's partitioner (CONTRACT.md §1): the Java client's murmur2.
                         "partitioner": "murmur2_random"})
    failures = []
    counts = {}
    for topic, path in pairs:
        with open(path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                if not line:
                    continue
                try:
                    key = json.loads(line).get("dossier_id")
                except (ValueError, AttributeError):
                    key = None
                producer.produce(topic, value=line, key=key.encode() if isinstance(key, str) else None,
                                 on_delivery=lambda err, _msg: err and failures.append(err))
                producer.poll(0)
                counts[topic] = counts.get(topic, 0) + 1
    producer.flush(60)
    if failures:
        sys.exit(f"publish: {len(failures)} messages failed, first: {failures[0]}")
    for topic, n in counts.items():
        print(f"published {n} messages to {topic}")
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", default="127.0.0.1:9092")
    parser.add_argument("pairs", nargs="+", metavar="TOPIC=FILE")
    args = parser.parse_args()
    publish(args.brokers, [p.split("=", 1) for p in args.pairs])


if __name__ == "__main__":
    main()
