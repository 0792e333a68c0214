"""The one wiring point of the matching service."""

import asyncio

from fastapi import FastAPI

from citypair_matching import service
from citypair_matching.cluster_cache import ClusterCache
from citypair_matching.config import Settings
from citypair_matching.core import MatchIndex, Rules, compile_kernel
from citypair_matching.handlers import event_followers, event_handlers
from citypair_matching.metrics import INDEX_CITIES
from citypair_matching.models import IdempotencyRecord, Inbox, Outbox
from citypair_matching.router import router
from citypair_shared.app import build_app
from citypair_shared.runtime import Runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    index = MatchIndex(
        rules=Rules(
            allow_same_country=settings.allow_same_country,
            min_population=settings.min_population,
            required_theme=settings.required_theme,
        )
    )

    async def rebuild_index(runtime: Runtime) -> None:
        async with runtime.session_factory() as session:
            await service.load_index(session=session, index=index)

    async def compile_ranking(_: Runtime) -> None:
        await asyncio.to_thread(compile_kernel)

    clusters = ClusterCache()

    async def warm_clusters(_: Runtime) -> None:
        """The clusters page's query (it asks for the defaults) found in the background once the index is loaded,
        so that the first view after a start is not a build."""
        default = {"theme": None, "size": service.CLUSTER_SIZE, "limit": service.CLUSTERS_SHOWN}
        service.refresh_clusters(cache=clusters, index=index, **default)

    runtime = Runtime(
        settings,
        outbox_model=Outbox,
        inbox_model=Inbox,
        idempotency_model=IdempotencyRecord,
        event_handlers=event_handlers(index, relay=lambda: runtime.relay),  # the relay is made at start
        event_followers=event_followers(index),
        on_start=[rebuild_index, compile_ranking, warm_clusters],
    )
    app = build_app(title="citypair matching", runtime=runtime, routers=[router])
    app.state.index = index
    app.state.clusters = clusters  # dies with the index
    INDEX_CITIES.set_function(lambda: len(index))  # read at each scrape
    return app
