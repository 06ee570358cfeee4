"""``[[source]]`` entries of the pipeline's TOML file, validated by type.

```toml
[[source]]
type = "inbox"        # inbox | replay | http | nats | stdin | tail | s3 | demo
path = "inbox"        # finished/ and failed/ are created beside it
format = "auto"       # auto | points | csv | flowlog | metrics
bucket = "1m"
```
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Format = Literal[
    "auto", "points", "csv", "flowlog", "cloudwatch-subscription", "metrics", "parquet"
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="name of the source (default: its type and path)")
    format: Format = Field("auto", description="how records are read")
    bucket: str | None = Field(None, description="bucket width; must agree with the pipeline's")
    series: str = Field("requests", description="series name for formats that carry none (csv)")
    labels: dict[str, str] = Field(default_factory=dict, description="labels added to every point")

    def source_name(self) -> str:
        kind = getattr(self, "type", "source")
        where = getattr(self, "path", "") or getattr(self, "subject", "")
        return self.name or f"{kind}:{where}"


class InboxSpec(_Spec):
    type: Literal["inbox"]
    path: str = "inbox"
    poll: float = Field(1.0, gt=0, description="seconds between looks at the folder")


class ReplaySpec(_Spec):
    type: Literal["replay"]
    path: str
    week_start: str | None = Field(None, description="first day of the default week (YYYY-MM-DD)")
    batch: str = Field("15m", description="how much is sent at a time")
    speed: float = Field(1.0, gt=0, description="1 = wall-clock time; 60 = an hour per minute")


class HttpSpec(_Spec):
    type: Literal["http"]


class NatsSpec(_Spec):
    type: Literal["nats"]
    url: str = "nats://127.0.0.1:4222"
    stream: str = "RUSHHOUR"
    subject: str = "rushhour.points"
    durable: str = "rushhour"
    fetch: int = Field(256, ge=1, le=10000, description="messages fetched per batch")
    ack_wait: float = Field(
        30.0, gt=0, description="seconds before an unacknowledged message is redelivered"
    )


class StdinSpec(_Spec):
    type: Literal["stdin"]


class TailSpec(_Spec):
    type: Literal["tail"]
    path: str
    poll: float = Field(0.5, gt=0)


class S3Spec(_Spec):
    type: Literal["s3"]
    bucket_name: str
    prefix: str = "inbox/"
    endpoint_url: str | None = None
    poll: float = Field(5.0, gt=0)


class DemoSpec(_Spec):
    """Synthetic live traffic of the demo series (``[demo]`` settings)."""

    type: Literal["demo"]


SourceSpec = Annotated[
    InboxSpec | ReplaySpec | HttpSpec | NatsSpec | StdinSpec | TailSpec | S3Spec | DemoSpec,
    Field(discriminator="type"),
]
