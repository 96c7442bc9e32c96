"""Read-side benchmark: seed N events, then p50/p95 of each query shape and ingest
throughput with the rollups on vs off, in one invocation, with ratios.

    .venv/bin/python bench/query_bench.py [--events 10000000] [--queries 200]
        [--ingest-events 100000] [--http-events 60000] [--rounds 3] [--durable]
        [--keep DIR]

It starts its own embedded PostgreSQL under a temporary directory (127.0.0.1 only), applies
the migrations and seeds N events spread over the last 90 days (90 daily partitions) through
the production write path, ``EventStore.write_events`` (dedup keys, COPY into ``events``;
the ``hookline_rollups`` trigger runs in the same transaction), in batches of 5000, then
folds the rollup deltas as the worker's compactor does and the seeded days' recipient
activity as the worker's ``ActivityFolder`` does. The data:
about 2.6 events per message (sent, delivered or bounced/dropped/deferred, opens with 30%
machine opens, clicks, a few complaints and unsubscribes), one recipient per message, a
recipient pool of N/20 addresses, 4 providers x 2 sources, half the mail in ~300 campaigns
(each sent on one day, engagement trailing over a week), 0-2 of 20 tags, metadata with the
sender's own message id.

Query shapes are run through ``ReadService`` (the SQL the admin API runs, plus decoding)
with random keys drawn from the seeded data. Targets from issue #7: message timeline and
recipient history p95 < 50 ms, 30-day stats by campaign p95 < 300 ms. The lookups by message
and by recipient probe one index leaf page per day partition, so they are timed twice: as
found, and after the two indexes were read into memory once (as pg_prewarm would).

Ingest throughput with the rollups on vs off (issue #7: they may cost at most 10%) is
measured after seeding (large indexes), in alternating rounds, two ways:

* end to end, the number the budget is about: signed SendGrid webhooks (100 events per
  request, 8 concurrent, half of them in campaigns with a Zipf popularity) POSTed to
  ``hookline serve`` in its own process; "off" disables the trigger and runs the gateway
  without the read-side workers (a bench-only launcher swaps ``read_side_tasks`` for one
  that returns none), "on" is the shipped configuration, compactor included. Reported: events/s until
  every request is acked (durable), and CPU µs per event of the gateway and PostgreSQL
  together (less sensitive than throughput to other load on a shared machine). A first
  round with the rollups on warms the server and is not counted;
* at the storage stage alone: ``EventStore.write_events`` with the trigger on and off,
  batches of 2000 (the batcher's default): the trigger's cost relative to the bare
  dedup + COPY path, the strictest view.

Last, the work taken off the write path: the folder's fold of today (the live rounds'
events), as it runs once the day has ended.

``--keep DIR`` keeps the cluster; a later run with the same DIR skips the seeding and
measures on it again (the seed's samples are saved with it in ``DIR/seed.json``), with new
live events. The default server is non-durable (fsync off), which makes the rollups' share of the
ingest cost look larger, not smaller; ``--durable`` runs it with fsync on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.proc_stats import cpu_seconds  # noqa: E402
from gateway.query.activity import ActivityFolder, fold_day  # noqa: E402
from gateway.query.compaction import RollupCompactor  # noqa: E402
from gateway.query.cursor import EventCursor  # noqa: E402
from gateway.query.filters import (  # noqa: E402
    EventFilter,
    InactiveQuery,
    MessageQuery,
    RecipientQuery,
    StatsQuery,
)
from gateway.query.reads import ReadService  # noqa: E402
from gateway.storage.embedded import EmbeddedPostgres  # noqa: E402
from gateway.storage.migrate import apply_migrations  # noqa: E402
from gateway.storage.pool import create_pool  # noqa: E402
from gateway.storage.store import EventStore  # noqa: E402
from handlers.events import BounceClass, EmailEvent, EventType  # noqa: E402
from hookline_testing import samples_for  # noqa: E402

PROVIDERS = ("sendgrid", "mailgun", "ses", "postmark")
DAYS = 90
SEED_BATCH = 5000
#: 2: a recipient is one fixed address per number (1 drew its domain at random, so nearly
#: every live event went to an address never seen before)
GENERATOR_VERSION = 2
INGEST_BATCH = 2000


#: live traffic mostly concerns a few recent campaigns: Zipf weights over 300 campaigns
_CAMPAIGN_WEIGHTS = [1 / (rank + 1) for rank in range(300)]


def live_campaign(rng: random.Random) -> str | None:
    """Half the mail in no campaign, the rest Zipf-distributed over 300 campaigns."""
    if rng.random() < 0.5:
        return None
    return f"campaign-{rng.choices(range(300), _CAMPAIGN_WEIGHTS)[0]:03d}"


def recipient_address(number: int) -> str:
    """The mailing list's recipient ``number``: the same address every time it is drawn,
    so live traffic goes mostly to known recipients, as a sender's does."""
    return f"user{number}@example{number % 50}.com"


def postgres_pids(data_dir: Path) -> list[int]:
    """The postmaster of the bench cluster and every process it forked (backends,
    walwriter, checkpointer, autovacuum ...)."""
    postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == postmaster:
                pids.append(int(entry.name))
    return pids


@dataclass
class Samples:
    """Keys drawn from the seeded data (reservoir samples) for the query shapes."""

    messages: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    our_ids: list[str] = field(default_factory=list)
    seen: int = 0

    def offer(self, rng: random.Random, message: str, recipient: str, our_id: str) -> None:
        self.seen += 1
        if len(self.messages) < 2000:
            self.messages.append(message)
            self.recipients.append(recipient)
            self.our_ids.append(our_id)
            return
        slot = rng.randrange(self.seen)
        if slot < 2000:
            self.messages[slot], self.recipients[slot], self.our_ids[slot] = (
                message,
                recipient,
                our_id,
            )


@dataclass
class SeedRecord:
    """What a kept cluster (``--keep``) was seeded with, so a later run reuses it."""

    now: datetime
    events: int
    seconds: float
    samples: Samples
    runs: int = 0
    #: the Generator's data model (records from before ``GENERATOR_VERSION`` lack it)
    generator: int = 1

    @staticmethod
    def load(base_dir: Path) -> SeedRecord | None:
        path = base_dir / "seed.json"
        if not path.exists():
            return None
        record = msgspec.json.decode(path.read_bytes(), type=SeedRecord)
        if record.generator != GENERATOR_VERSION:
            raise SystemExit(f"{base_dir} was seeded by another version of the generator")
        return record

    def save(self, base_dir: Path) -> None:
        (base_dir / "seed.json").write_bytes(msgspec.json.encode(self))


class Generator:
    """Deterministic synthetic mail traffic ending at ``now``."""

    def __init__(self, total: int, now: datetime, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - timedelta(days=DAYS)
        self.recipient_pool = max(100, total // 20)
        self.campaign_days = [self.rng.uniform(0, DAYS - 1) for _ in range(300)]
        self.tags = [f"tag{i}" for i in range(20)]
        self.samples = Samples()
        self.counter = 0

    def _event(
        self, message: dict[str, Any], event_type: EventType, at: datetime, **extra: Any
    ) -> EmailEvent:
        self.counter += 1
        received = min(at + timedelta(seconds=self.rng.uniform(1, 60)), self.now)
        return EmailEvent(
            provider=message["provider"],
            source=message["source"],
            event_type=event_type,
            occurred_at=min(at, self.now),
            received_at=received,
            recipient=message["recipient"],
            message_id=message["id"],
            dedup_key=f"bench:{message['id']}:{self.counter}",
            provider_event_id=str(self.counter),
            esp_event=event_type.value,
            campaign=message["campaign"],
            tags=message["tags"],
            metadata=message["metadata"],
            raw={
                "event": event_type.value,
                "email": message["recipient"],
                "sg_message_id": message["id"] + ".filter-0001",
                "timestamp": int(at.timestamp()),
                **message["metadata"],
            },
            **extra,
        )

    def message_events(self, index: int, sent_at: datetime | None = None) -> list[EmailEvent]:
        rng = self.rng
        provider = PROVIDERS[index % len(PROVIDERS)]
        campaign = None if sent_at is None else live_campaign(rng)
        if sent_at is None:
            if rng.random() < 0.5:
                number = rng.randrange(len(self.campaign_days))
                campaign = f"campaign-{number:03d}"
                day = self.campaign_days[number]
                sent_at = self.start + timedelta(days=day, hours=rng.uniform(0, 36))
            else:
                sent_at = self.start + timedelta(seconds=rng.uniform(0, DAYS * 86400))
        recipient = recipient_address(rng.randrange(self.recipient_pool))
        our_id = f"ours-{index:011d}"
        message: dict[str, Any] = {
            "id": f"{provider[:2]}-{index:011d}",
            "provider": provider,
            "source": f"{provider}-{index % 2}",
            "recipient": recipient,
            "campaign": campaign,
            "tags": tuple(rng.sample(self.tags, rng.randrange(3))),
            "metadata": {"our_id": our_id, "tenant": f"t{index % 37}"},
        }
        self.samples.offer(rng, message["id"], recipient, our_id)
        events = [self._event(message, EventType.SENT, sent_at)]
        at = sent_at + timedelta(seconds=rng.uniform(1, 30))
        fate = rng.random()
        if fate < 0.02:
            events.append(
                self._event(message, EventType.BOUNCED, at, bounce_class=BounceClass.HARD)
            )
            return events
        if fate < 0.03:
            events.append(
                self._event(message, EventType.BOUNCED, at, bounce_class=BounceClass.SOFT)
            )
            return events
        if fate < 0.04:
            events.append(self._event(message, EventType.DROPPED, at))
            return events
        if fate < 0.05:
            events.append(self._event(message, EventType.DEFERRED, at))
            at += timedelta(minutes=rng.uniform(5, 60))
        events.append(self._event(message, EventType.DELIVERED, at))
        if rng.random() < 0.35:
            machine = rng.random() < 0.3
            opened_at = at + timedelta(hours=rng.expovariate(1 / 12))
            events.append(self._event(message, EventType.OPENED, opened_at, machine_open=machine))
            if rng.random() < 0.3:
                events.append(
                    self._event(
                        message, EventType.OPENED, opened_at + timedelta(hours=rng.uniform(1, 48))
                    )
                )
            if not machine and rng.random() < 0.25:
                events.append(
                    self._event(
                        message,
                        EventType.CLICKED,
                        opened_at + timedelta(seconds=rng.uniform(5, 600)),
                        url="https://example.com/offer",
                    )
                )
        if rng.random() < 0.003:
            events.append(self._event(message, EventType.UNSUBSCRIBED, at + timedelta(hours=30)))
        if rng.random() < 0.001:
            events.append(self._event(message, EventType.COMPLAINED, at + timedelta(hours=31)))
        return events

    def batches(
        self, total: int, size: int, first_index: int = 0, sent_at: datetime | None = None
    ) -> Iterator[list[EmailEvent]]:
        """``total`` events of whole messages from ``first_index`` on, ``size`` at a time."""
        batch: list[EmailEvent] = []
        index = first_index
        while total > 0:
            events = self.message_events(index, sent_at=sent_at)[:total]
            index += 1
            total -= len(events)
            batch.extend(events)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def live_batches(self, total: int, size: int, first_index: int) -> Iterator[list[EmailEvent]]:
        """New events received now (the current partition), for the ingest measurement."""
        return self.batches(total, size, first_index, sent_at=self.now - timedelta(minutes=5))


async def seed(store: EventStore, generator: Generator, total: int) -> float:
    started = time.perf_counter()
    written = 0
    last_report = started
    for batch in generator.batches(total, SEED_BATCH):
        await store.write_events(batch)
        written += len(batch)
        if time.perf_counter() - last_report > 15:
            last_report = time.perf_counter()
            rate = written / (last_report - started)
            print(f"  seeded {written:,} / {total:,} ({rate:,.0f} events/s)", flush=True)
    return time.perf_counter() - started


async def ingest_round(
    store: EventStore, url: str, batches: list[list[EmailEvent]], rollups: bool, pg_dir: Path
) -> tuple[float, float]:
    """Write the batches with the rollups trigger on or off: (events/s, CPU µs per event of
    this process and PostgreSQL together)."""
    await set_rollups(url, rollups)
    count = sum(len(batch) for batch in batches)
    pids = postgres_pids(pg_dir)
    cpu_before = time.process_time() + cpu_seconds(pids)
    started = time.perf_counter()
    for batch in batches:
        await store.write_events(batch)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() + cpu_seconds(pids) - cpu_before
    await set_rollups(url, True)
    return count / elapsed, cpu / count * 1e6


async def timed(
    name: str, runs: int, make: Callable[[random.Random], Awaitable[Any]], rng: random.Random
) -> tuple[str, float, float, float]:
    for _ in range(min(10, runs)):  # warm the caches and the prepared statements
        await make(rng)
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        await make(rng)
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    p95 = durations[max(0, round(0.95 * len(durations)) - 1)]
    return name, statistics.median(durations), p95, max(durations)


_LOOKUPS = ("message timeline", "recipient history", "events by recipient")


async def latency_rows(
    shapes: list[tuple[str, Callable[[random.Random], Awaitable[Any]], float | None]],
    runs: int,
    rng: random.Random,
) -> list[list[str]]:
    """Time each query shape; a table row per shape, with the verdict against its target."""
    rows = []
    for name, make, target in shapes:
        shape, p50, p95, worst = await timed(name, runs, make, rng)
        verdict = "-" if target is None else ("ok" if p95 < target else "MISSED")
        rows.append(
            [
                shape,
                f"{p50:.1f}",
                f"{p95:.1f}",
                f"{worst:.1f}",
                "-" if target is None else f"< {target:.0f}",
                verdict,
                "-" if target is None else f"{p95 / target:.2f}",
            ]
        )
        print(f"  {shape}: p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)
    return rows


async def prewarm_lookup_indexes(pool: asyncpg.Pool) -> tuple[float, float]:
    """Read every partition's ``message_id`` and ``lower(recipient)`` index file once, into
    the operating system's page cache (what pg_prewarm's prefetch mode does; the bench's
    role is the cluster's superuser). Returns seconds and megabytes read."""
    started = time.perf_counter()
    async with pool.acquire() as conn:
        read = await conn.fetchval(
            "SELECT coalesce(sum(length(pg_read_binary_file(pg_relation_filepath(inhrelid)))), 0) "
            "FROM pg_inherits WHERE inhparent IN "
            "('events_message_id'::regclass, 'events_recipient'::regclass)"
        )
    return time.perf_counter() - started, read / 1e6


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))


#: runs ``hookline serve`` with or without the read-side workers (bench-only switch)
_LAUNCHER = """
import os, sys
import gateway.query.workers as workers
if os.environ["QBENCH_ROLLUPS"] == "off":
    workers.read_side_tasks = lambda *args, **kwargs: []
from gateway.cli import main
sys.exit(main(["serve", "--config", sys.argv[1]]))
"""
_SG_EVENTS = [
    ("processed", 0.30),
    ("delivered", 0.30),
    ("open", 0.20),
    ("click", 0.06),
    ("bounce", 0.03),
    ("deferred", 0.03),
    ("dropped", 0.02),
    ("spamreport", 0.01),
    ("unsubscribe", 0.05),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signed_requests(
    spec: Any, key: Any, count: int, per_request: int, tag: str, recipients: int
) -> list[tuple[dict[str, str], bytes]]:
    """Pre-signed SendGrid batches of unique events (mixed types, tags, custom args)."""
    rng = random.Random(tag)
    names = [name for name, _ in _SG_EVENTS]
    weights = [weight for _, weight in _SG_EVENTS]
    now = datetime.now(UTC)
    requests = []
    for n in range(count):
        items = []
        for i in range(per_request):
            event = rng.choices(names, weights)[0]
            message = f"{tag}{n:06d}{i // 3:04d}"
            item: dict[str, Any] = {
                "email": recipient_address(rng.randrange(recipients)),
                "timestamp": int(now.timestamp()) - rng.randrange(3600),
                "event": event,
                "sg_event_id": f"{tag}-{n}-{i}",
                "sg_message_id": f"{message}.filter-0001",
                "category": rng.sample(["news", "promo", "billing", "alerts"], rng.randrange(3)),
                "our_id": f"ours-{message}",
            }
            campaign = live_campaign(rng)
            if campaign is not None:
                item["marketing_campaign_name"] = campaign
            if event == "bounce":
                item.update({"type": "bounce", "status": "5.1.1", "reason": "550 no such user"})
            if event == "open":
                item["sg_machine_open"] = rng.random() < 0.3
            if event == "click":
                item["url"] = "https://example.com/offer"
            items.append(item)
        body = msgspec.json.encode(items)
        signed = samples_for("sendgrid").signed_request(spec, key, body, now=now)
        requests.append((dict(signed.headers), signed.body))
    return requests


async def set_rollups(url: str, on: bool) -> None:
    """Switch the read side's rollups trigger on ``events`` on or off (bench only)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            f"ALTER TABLE events {'ENABLE' if on else 'DISABLE'} TRIGGER hookline_rollups"
        )
    finally:
        await conn.close()


async def _post_all(
    base_url: str, requests: list[tuple[dict[str, str], bytes]], concurrency: int
) -> float:
    queue = list(reversed(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while queue:
                headers, body = queue.pop()
                response = await client.post(
                    "/webhooks/sendgrid/bench", content=body, headers=headers
                )
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def _http_round(
    args: argparse.Namespace, url: str, base: Path, rollups: bool, tag: str, recipients: int
) -> tuple[float, float]:
    """One gateway process, with or without the read side: (events/s acked, CPU µs per
    event of the gateway and PostgreSQL together)."""
    spec, key = samples_for("sendgrid").make_source("bench")
    port = _free_port()
    config = base / f"gateway-{tag}.toml"
    config.write_text(
        f"""[server]\nhost = "127.0.0.1"\nport = {port}\n
[database]\nurl = "{url}"\n
[storage]\ndata_dir = "{base / ("gw-" + tag)}"\n
[logging]\nlevel = "warning"\nformat = "json"\n
[[sources]]\nprovider = "sendgrid"\nname = "bench"\nsigning_key = "{spec.signing_key}"\n"""
    )
    count = max(1, args.http_events // args.http_batch)
    requests = _signed_requests(spec, key, count, args.http_batch, tag, recipients)
    await set_rollups(url, rollups)
    env = {**os.environ, "QBENCH_ROLLUPS": "on" if rollups else "off"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _LAUNCHER,
        str(config),
        env=env,
        cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(600):
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("gateway did not become ready")
        await _post_all(f"http://127.0.0.1:{port}", requests[: max(1, count // 10)], 8)  # warm
        pg = postgres_pids(base / "data")
        cpu_before = (cpu_seconds([process.pid]), cpu_seconds(pg))
        seconds = await _post_all(f"http://127.0.0.1:{port}", requests[count // 10 :], 8)
        await asyncio.sleep(6)  # with the read side on, its compactor folds this round
        events = (count - count // 10) * args.http_batch
        gateway_cpu = cpu_seconds([process.pid]) - cpu_before[0]
        postgres_cpu = cpu_seconds(pg) - cpu_before[1]
        if os.environ.get("QBENCH_CPU_SPLIT"):
            print(
                f"    gateway {gateway_cpu / events * 1e6:.0f} µs/event, "
                f"postgres {postgres_cpu / events * 1e6:.0f} µs/event"
            )
        return events / seconds, (gateway_cpu + postgres_cpu) / events * 1e6
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 60)


async def run(args: argparse.Namespace, url: str, base_dir: Path) -> None:
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    pool = await create_pool(url, min_size=2, max_size=4, command_timeout=600)
    store = EventStore(pool)
    seeded = SeedRecord.load(base_dir)
    now = seeded.now if seeded else datetime.now(UTC).replace(microsecond=0)
    generator = Generator(seeded.events if seeded else args.events, now)
    await store.ensure_partitions(datetime.now(UTC).date())

    if seeded is None:
        print(f"seeding {args.events:,} events over {DAYS} days ...", flush=True)
        seconds = await seed(store, generator, args.events)
        started = time.perf_counter()
        folded = await RollupCompactor(pool).run_once()  # what the worker does every 5 s
        print(
            f"folded {folded:,} rollup delta rows in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        started = time.perf_counter()
        days = await ActivityFolder(pool).run_once()  # the seeded days, received "late"
        print(
            f"folded the recipient activity of {len(days)} days "
            f"in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        seeded = SeedRecord(
            now=now,
            events=args.events,
            seconds=seconds,
            samples=generator.samples,
            generator=GENERATOR_VERSION,
        )
    else:
        generator.samples = seeded.samples
        print(f"reusing the {seeded.events:,} events seeded in {base_dir} (run {seeded.runs})")
        await RollupCompactor(pool).run_once()  # deltas a previous run left unfolded
        await ActivityFolder(pool).run_once()
    seeded.runs += 1
    if args.keep:
        seeded.save(base_dir)
    seconds = seeded.seconds
    run_tag = f"x{seeded.runs}"  # live events of a reused cluster must be new events
    async with pool.acquire() as conn:
        await conn.execute("VACUUM ANALYZE")
        sizes = await conn.fetchrow(
            "SELECT pg_size_pretty(pg_total_relation_size('events_default') + "
            "(SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            " WHERE inhparent = 'events'::regclass)) AS events, "
            "(SELECT count(*) FROM stats_hourly) AS rollup_rows, "
            "(SELECT count(*) FROM stats_hourly_tags) AS tag_rollup_rows, "
            "(SELECT count(*) FROM recipient_activity) AS recipients, "
            "(SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass) AS parts"
        )
    print(
        f"seeded in {seconds:,.0f} s ({seeded.events / seconds:,.0f} events/s incl. rollups); "
        f"events {sizes['events']} in {sizes['parts']} partitions, "
        f"{sizes['rollup_rows']:,} hourly rollup rows (+{sizes['tag_rollup_rows']:,} per tag), "
        f"{sizes['recipients']:,} recipients\n",
        flush=True,
    )

    service = ReadService(pool)
    samples = generator.samples
    month = now - timedelta(days=30)
    campaigns = sorted({f"campaign-{i:03d}" for i in range(300)})

    async def page_two(rng: random.Random) -> Any:
        campaign = rng.choice(campaigns)
        first = await service.search_events(EventFilter(campaign=campaign))
        if first.next_cursor:
            cursor = EventCursor.decode(first.next_cursor)
            return await service.search_events(EventFilter(campaign=campaign, cursor=cursor))
        return first

    shapes: list[tuple[str, Callable[[random.Random], Awaitable[Any]], float | None]] = [
        (
            "message timeline",
            lambda r: service.message(r.choice(samples.messages), MessageQuery()),
            50.0,
        ),
        (
            "recipient history",
            lambda r: service.recipient(r.choice(samples.recipients), RecipientQuery()),
            50.0,
        ),
        (
            "stats 30d by campaign",
            lambda r: service.stats(StatsQuery(group_by="campaign", since=month, until=now)),
            300.0,
        ),
        (
            "stats 30d by day",
            lambda r: service.stats(StatsQuery(group_by="day", since=month, until=now)),
            None,
        ),
        (
            "stats 30d by tag",
            lambda r: service.stats(StatsQuery(group_by="tag", since=month, until=now)),
            None,
        ),
        (
            "stats 90d one campaign by day",
            lambda r: service.stats(
                StatsQuery(
                    group_by="day",
                    since=now - timedelta(days=DAYS),
                    until=now,
                    campaign=r.choice(campaigns),
                )
            ),
            None,
        ),
        ("events newest page", lambda r: service.search_events(EventFilter()), None),
        (
            "events by metadata",
            lambda r: service.search_events(
                EventFilter(metadata=(("our_id", r.choice(samples.our_ids)),))
            ),
            None,
        ),
        (
            "events by recipient",
            lambda r: service.search_events(EventFilter(recipient=r.choice(samples.recipients))),
            None,
        ),
        ("events by campaign, page 2", page_two, None),
        (
            "events bounced last 24h",
            lambda r: service.search_events(
                EventFilter(event_types=("bounced",), since=now - timedelta(days=1))
            ),
            None,
        ),
        (
            "inactive recipients (60d)",
            lambda r: service.inactive(
                InactiveQuery(inactive_days=60, cutoff=now - timedelta(days=60))
            ),
            None,
        ),
    ]
    rng = random.Random(99)
    print(f"\nquery latency over {seeded.events:,} events ({args.queries} runs each, ms)")
    print_table(
        ["shape", "p50", "p95", "max", "target p95", "", "p95/target"],
        await latency_rows(shapes, args.queries, rng),
    )
    # The message and recipient lookups read one index leaf page per day partition, so at
    # scale they depend on those indexes being in memory. The run above measures them as
    # found (after the seed, or after the operating system evicted an idle cluster's
    # pages); this one after reading the two indexes once, as pg_prewarm would.
    seconds, megabytes = await prewarm_lookup_indexes(pool)
    print(
        f"\nthe lookup queries again, with the message-id and recipient indexes read into "
        f"memory first ({megabytes:,.0f} MB in {seconds:.1f} s)"
    )
    print_table(
        ["shape", "p50", "p95", "max", "target p95", "", "p95/target"],
        await latency_rows([s for s in shapes if s[0] in _LOOKUPS], args.queries, rng),
    )

    if args.ingest_events > 0:
        print(
            f"\ningest, storage stage (EventStore.write_events, batches of {INGEST_BATCH}): "
            f"{args.rounds} alternating rounds of {args.ingest_events:,} new events"
        )
        index = 10**9 + seeded.runs * 10**7
        stage: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for round_number in range(args.rounds):
            for hooks in (True, False) if round_number % 2 == 0 else (False, True):
                batches = list(generator.live_batches(args.ingest_events, INGEST_BATCH, index))
                index += args.ingest_events
                stage[hooks].append(
                    await ingest_round(store, url, batches, hooks, base_dir / "data")
                )
        report_cost(stage, "storage stage (bench process + PostgreSQL CPU)")
    await RollupCompactor(pool).run_once()
    await pool.close()

    if args.http_events <= 0:
        return
    print(
        f"\ningest over HTTP (signed SendGrid webhooks, {args.http_batch} events per request, "
        f"8 concurrent, gateway in its own process, its compactor included): {args.rounds} "
        f"alternating rounds of {args.http_events:,} events"
    )
    # The first round after start-up pays for cold shared buffers (page faults on fresh
    # shared memory, reads of the rollup tables): a round with the rollups on, not counted.
    warm = await _http_round(args, url, base_dir, True, f"{run_tag}warm", generator.recipient_pool)
    print(f"  warm-up, not counted: {warm[0]:,.0f} events/s, {warm[1]:,.0f} CPU µs/event")
    http: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for round_number in range(args.rounds):
        for hooks in (True, False) if round_number % 2 == 0 else (False, True):
            tag = f"{run_tag}r{round_number}{'on' if hooks else 'off'}"
            result = await _http_round(args, url, base_dir, hooks, tag, generator.recipient_pool)
            http[hooks].append(result)
            print(
                f"  rollups {'on ' if hooks else 'off'}: {result[0]:,.0f} events/s, "
                f"{result[1]:,.0f} CPU µs/event",
                flush=True,
            )
    report_cost(http, "end to end (gateway + PostgreSQL CPU)", limit=True)
    await report_fold_cost(url)


async def report_fold_cost(url: str) -> None:
    """The recipient activity work taken off the write path: what the worker's fold of
    today (every event received today, the live rounds included) costs once the day ends."""
    conn = await asyncpg.connect(url)
    try:
        today = datetime.now(UTC).date()
        received = await conn.fetchval(
            "SELECT count(*) FROM events WHERE received_at >= $1",
            datetime.combine(today, datetime.min.time(), tzinfo=UTC),
        )
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        cpu_before = cpu_seconds([backend])
        started = time.perf_counter()
        async with conn.transaction():
            changed = await fold_day(conn, today)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds([backend]) - cpu_before
    finally:
        await conn.close()
    print(
        f"\nrecipient activity, folded by the worker once the day has ended (not on the "
        f"write path): today's {received:,} events in {seconds:.1f} s, "
        f"{cpu / max(1, received) * 1e6:.1f} CPU µs/event, {changed:,} rows changed"
    )


def report_cost(
    results: dict[bool, list[tuple[float, float]]], what: str, *, limit: bool = False
) -> None:
    """Throughput (noisy on a shared machine) and CPU per event (robust), on vs off."""
    rate_on = statistics.median(r for r, _ in results[True])
    rate_off = statistics.median(r for r, _ in results[False])
    cpu_on = statistics.median(c for _, c in results[True])
    cpu_off = statistics.median(c for _, c in results[False])
    print_table(
        ["rollups", "events/s (median)", "CPU µs/event (median)", "rounds (events/s)"],
        [
            [
                "off",
                f"{rate_off:,.0f}",
                f"{cpu_off:,.0f}",
                ", ".join(f"{r:,.0f}" for r, _ in results[False]),
            ],
            [
                "on",
                f"{rate_on:,.0f}",
                f"{cpu_on:,.0f}",
                ", ".join(f"{r:,.0f}" for r, _ in results[True]),
            ],
        ],
    )
    budget = " (limit 10%)" if limit else ""
    print(
        f"rollups on vs off, {what}: throughput {(rate_on / rate_off - 1) * 100:+.1f}%, "
        f"CPU per event {(cpu_on / cpu_off - 1) * 100:+.1f}%{budget}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=200, help="runs per query shape")
    parser.add_argument(
        "--ingest-events",
        type=int,
        default=100_000,
        help="events per storage-stage round (0: skip)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--http-events", type=int, default=60_000, help="events per HTTP ingest round (0: skip)"
    )
    parser.add_argument("--http-batch", type=int, default=100, help="events per webhook request")
    parser.add_argument("--durable", action="store_true", help="fsync on")
    parser.add_argument(
        "--shared-buffers",
        default="128MB",
        help="PostgreSQL's shared_buffers (its default 128MB; a production server holding "
        "10M events would give it a good share of its memory)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="put the cluster in DIR and keep it; a later run with the same DIR reuses it",
    )
    args = parser.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hookline-qbench-"))
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    server = EmbeddedPostgres(
        base / "data", durable=args.durable, shared_buffers=args.shared_buffers
    )
    url = server.start()
    print(
        f"PostgreSQL: shared_buffers {args.shared_buffers}, "
        f"{'durable (fsync on)' if args.durable else 'fsync off'}",
        flush=True,
    )
    try:
        asyncio.run(run(args, url, base))
    finally:
        server.stop("fast")
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
