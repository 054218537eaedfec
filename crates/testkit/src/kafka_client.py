"""The independent Kafka client of the test kit (confluent-kafka, PyPI).

Commands (brokers is host:port):
  create-topic BROKERS TOPIC PARTITIONS
  produce BROKERS TOPIC       records as JSON lines on stdin:
                              {"key": str|null, "value": str|null,
                               "headers": [[name, value]...], "partition": int|null}
                              prints [[partition, offset], ...] in input order
  consume BROKERS TOPIC COUNT reads COUNT records from offset 0 of every
                              partition (assigned, no group join); prints
                              {"records": n, "seconds": s, "from_first": f},
                              s from the assign to the last record, f from the
                              first record to the last
  committed BROKERS GROUP TOPIC PARTITIONS
                              prints {"<partition>": offset, ...} (-1001 = none)
Every client also takes the librdkafka properties of the JSON object in the
environment variable SIGNALBOX_KAFKA_CLIENT_CONFIG (TLS, SASL), e.g.
  {"security.protocol": "ssl", "ssl.ca.location": "/tmp/ca.pem"}
  {"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512",
   "sasl.username": "u", "sasl.password": "p", "ssl.ca.location": "..."}
Exit status 1 with the reason on stderr when anything fails.
"""
import json
import os
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def config(brokers, **extra):
    """The client settings: bootstrap, `extra`, then the environment's."""
    c = {"bootstrap.servers": brokers, **extra}
    c.update(json.loads(os.environ.get("SIGNALBOX_KAFKA_CLIENT_CONFIG") or "{}"))
    return c


def create_topic(brokers, topic, partitions):
    admin = AdminClient(config(brokers))
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=int(partitions), replication_factor=1)]
    )
    for f in futures.values():
        f.result(timeout=30)


def produce(brokers, topic):
    import time

    started = time.monotonic()
    producer = Producer(config(brokers, **{"linger.ms": 5}))
    records = [json.loads(line) for line in sys.stdin if line.strip()]
    delivered = [None] * len(records)
    errors = []

    def on_delivery(index):
        def cb(err, msg):
            if err is not None:
                errors.append(f"record {index}: {err}")
            else:
                delivered[index] = [msg.partition(), msg.offset()]

        return cb

    for i, r in enumerate(records):
        kwargs = {
            "key": None if r.get("key") is None else r["key"].encode(),
            "value": None if r.get("value") is None else r["value"].encode(),
            "headers": [(h[0], h[1].encode()) for h in r.get("headers", [])],
            "on_delivery": on_delivery(i),
        }
        if r.get("partition") is not None:
            kwargs["partition"] = int(r["partition"])
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(60)
    if left or errors or any(d is None for d in delivered):
        sys.exit(f"produce failed: {left} not flushed; {errors[:5]}")
    sys.stderr.write(f"produced {len(records)} in {time.monotonic() - started:.3f} s\n")
    print(json.dumps(delivered))


def consume(brokers, topic, count):
    import time

    c = Consumer(
        config(
            brokers, **{"group.id": "bench-baseline", "enable.auto.commit": False}
        )
    )
    partitions = c.list_topics(topic, timeout=30).topics[topic].partitions
    # assign (no group join): the clock starts before the first fetch.
    started = time.monotonic()
    c.assign([TopicPartition(topic, p, 0) for p in partitions])
    want, seen, first = int(count), 0, None
    deadline = started + 120
    while seen < want and time.monotonic() < deadline:
        for m in c.consume(num_messages=1000, timeout=1.0):
            if m.error() is None:
                if first is None:
                    first = time.monotonic()
                seen += 1
    last = time.monotonic()
    c.close()
    if seen < want:
        sys.exit(f"consume: only {seen} of {want} records")
    # "seconds" counts the assign and the first fetch; "from_first" starts at
    # the first record, as a steady-state rate does.
    print(
        json.dumps(
            {"records": seen, "seconds": last - started, "from_first": last - first}
        )
    )


def committed(brokers, group, topic, partitions):
    c = Consumer(config(brokers, **{"group.id": group}))
    parts = [TopicPartition(topic, p) for p in range(int(partitions))]
    out = {str(tp.partition): tp.offset for tp in c.committed(parts, timeout=30)}
    c.close()
    print(json.dumps(out))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        {
            "create-topic": create_topic,
            "produce": produce,
            "consume": consume,
            "committed": committed,
        }[cmd](*args)
    except KafkaException as e:
        sys.exit(f"{cmd} failed: {e}")


if __name__ == "__main__":
    main()
