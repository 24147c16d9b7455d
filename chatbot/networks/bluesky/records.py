"""Posting on Bluesky exactly once: records at a chosen key, threads, facets, images.

Every post gets a record key (a TID, :mod:`chatbot.networks.bluesky.keys`)
derived from the step's planned time and its idempotency key, and is written
with ``com.atproto.repo.putRecord`` and ``swapRecord: null``, which only
creates: a repeat of the same key answers 400 ``InvalidSwap`` (or, for a
byte-identical record, 200 without a new commit), and the adapter returns the
post that is already there. A crash between the call and recording its result
therefore never posts twice. (``createRecord`` with an existing rkey answers
HTTP 500, not a clean conflict: it is not used.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import structlog
from atproto_client import models
from atproto_client.models.utils import get_model_as_dict
from PIL import Image, UnidentifiedImageError

from chatbot import errors
from chatbot.networks.base import Attachment, PostRequest
from chatbot.networks.bluesky.keys import record_key
from chatbot.networks.bluesky.reading import BSKY_WEB, post_url
from chatbot.networks.bluesky.session import Client
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.text import Facet

log = structlog.get_logger("chatbot.networks.bluesky")

POST_COLLECTION = "app.bsky.feed.post"
# app.bsky.embed.images: at most 4 images a post.
MAX_IMAGES = 4
# app.bsky.feed.post: at most 8 extra tags outside the text.
MAX_TAGS = 8
# Record keys tried for one request: the first is the TID of the planned time;
# the next ones are only used if another post already holds that key.
KEY_CANDIDATES = 4


def to_bluesky_facets(
    facets: Iterable[Facet], resolve_handle: Callable[[str], str | None]
) -> list[models.AppBskyRichtextFacet.Main]:
    """Our facets as atproto facets; a mention whose handle does not resolve is dropped."""
    result: list[models.AppBskyRichtextFacet.Main] = []
    for facet in facets:
        feature: Any
        if facet.kind == "tag":
            feature = models.AppBskyRichtextFacet.Tag(tag=facet.value.removeprefix("#"))
        elif facet.kind == "link":
            feature = models.AppBskyRichtextFacet.Link(uri=facet.value)
        else:
            did = resolve_handle(facet.value.removeprefix("@"))
            if did is None:
                continue
            feature = models.AppBskyRichtextFacet.Mention(did=did)
        result.append(
            models.AppBskyRichtextFacet.Main(
                features=[feature],
                index=models.AppBskyRichtextFacet.ByteSlice(
                    byte_start=facet.byte_start, byte_end=facet.byte_end
                ),
            )
        )
    return sorted(result, key=lambda f: f.index.byte_start)


def field_of(obj: Any, name: str) -> Any:
    """A field of an SDK model, or of a plain dict (a record the SDK did not model)."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def same_text(a: str, b: str) -> bool:
    """Whether two post texts are the same, whitespace aside."""
    return " ".join(a.split()) == " ".join(b.split())


def split_uri(uri: str) -> tuple[str, str, str]:
    """(repo, collection, rkey) of an at:// URI."""
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3:
        raise errors.Rejected(f"not an at:// post address: {uri}")
    return parts[0], parts[1], parts[2]


def post_ref(uri: str, cid: str, *, handle: str = "", web: str = BSKY_WEB) -> PostRef:
    """The reference the runner keeps for a post: its uri, its page (by the author's
    handle where known, as every other link is), its content hash."""
    repo, _collection, _rkey = split_uri(uri)
    return PostRef(
        network=NetworkName.BLUESKY, id=uri, url=post_url(handle or repo, uri, web), cid=cid
    )


class Records:
    """The bot's posts as records in its repo, each at the key of its step."""

    def __init__(
        self, client: Client, *, clock: Callable[[], datetime], web: str = BSKY_WEB
    ) -> None:
        self._client = client
        self._clock = clock
        self._web = web
        self._dids: dict[str, str | None] = {}  # handle -> DID, None: does not resolve

    def post(self, request: PostRequest) -> PostRef:
        """Create the post at its key, or return the one already there."""
        if request.created_at is None:
            raise errors.Rejected("a Bluesky post needs the step's planned time for its record key")
        if request.first_attempt_at is not None:
            # An earlier attempt may have landed: don't upload its images again.
            found = self.find(request)
            if found is not None:
                return found
        record = self._record(request)
        for candidate in range(KEY_CANDIDATES):
            rkey = record_key(request.created_at, request.idempotency_key, candidate)
            existing = None
            for _try in range(2):  # twice: the record may vanish between the two calls
                created = self._create(rkey, record)
                if created is not None:
                    return created
                existing = self._get_post(rkey)
                if existing is not None:
                    break
            if existing is None:
                raise errors.Transient(f"posting: the record at {rkey} keeps changing")
            ref, text = existing
            if same_text(text, request.text):
                log.info("bluesky post already there", rkey=rkey)
                return ref
            # Another post holds this key (same planned time, same clock id): next one.
        raise errors.Rejected(
            f"every record key for this post is taken by other posts ({KEY_CANDIDATES} tried)"
        )

    def find(self, request: PostRequest) -> PostRef | None:
        """The post an earlier attempt created at one of the request's keys, if any."""
        if request.created_at is None:
            return None
        for candidate in range(KEY_CANDIDATES):
            rkey = record_key(request.created_at, request.idempotency_key, candidate)
            existing = self._get_post(rkey)
            if existing is None:
                return None
            ref, text = existing
            if same_text(text, request.text):
                return ref
        return None

    def _record(self, request: PostRequest) -> dict[str, Any]:
        reply = None
        if request.parent is not None:
            reply = self._reply_ref(request.parent, request.root)
        record = models.AppBskyFeedPost.Record(
            text=request.text,
            created_at=self._clock().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            facets=to_bluesky_facets(request.facets, self._resolve_handle) or None,
            reply=reply,
            embed=self._images(request.attachments),
            tags=list(request.tags[:MAX_TAGS]) or None,
        )
        record_dict: dict[str, Any] = get_model_as_dict(record)
        return record_dict

    def _create(self, rkey: str, record: dict[str, Any]) -> PostRef | None:
        """Create the post at ``rkey``; None if a record is already there (InvalidSwap)."""
        response = self._client.create_record("posting", POST_COLLECTION, rkey, record)
        if response is None:
            return None
        answer = response.content if isinstance(response.content, dict) else {}
        uri, cid = str(answer.get("uri", "")), str(answer.get("cid", ""))
        if not uri:
            raise errors.Transient("posting: Bluesky answered without the post's address")
        return post_ref(uri, cid, handle=self._client.handle, web=self._web)

    def _get_post(self, rkey: str) -> tuple[PostRef, str] | None:
        found = self._client.own_record("reading a post", POST_COLLECTION, rkey)
        if found is None:
            return None
        return post_ref(found.uri, found.cid or "", handle=self._client.handle, web=self._web), str(
            getattr(found.value, "text", "")
        )

    def _reply_ref(self, parent: PostRef, root: PostRef | None) -> models.AppBskyFeedPost.ReplyRef:
        """Root and parent of a reply: the root is the first post of the parent's thread.

        Given no root, or the parent as its root (a reply to someone's post, whose
        thread the bot does not know), the root is the parent's own root when the
        parent is itself a reply: a reply whose root is not its thread's first post
        is a broken thread on Bluesky.
        """
        if root is not None and root.id != parent.id:
            return models.AppBskyFeedPost.ReplyRef(
                root=self._strong_ref(root), parent=self._strong_ref(parent)
            )
        if parent.cid and parent.id.startswith(f"at://{self._client.did()}/"):
            # The bot's own post: replied to with root == parent only where it starts a
            # thread (the welcome under Q1, a recap's first post).
            own = self._strong_ref(parent)
            return models.AppBskyFeedPost.ReplyRef(root=own, parent=own)
        found = self._read(parent.id, "reading the post replied to")
        parent_ref = models.ComAtprotoRepoStrongRef.Main(uri=parent.id, cid=found.cid or "")
        above = field_of(field_of(found.value, "reply"), "root")
        root_ref = (
            models.ComAtprotoRepoStrongRef.Main(
                uri=field_of(above, "uri"), cid=field_of(above, "cid")
            )
            if field_of(above, "uri")
            else parent_ref
        )
        return models.AppBskyFeedPost.ReplyRef(root=root_ref, parent=parent_ref)

    def _strong_ref(self, ref: PostRef) -> models.ComAtprotoRepoStrongRef.Main:
        cid = ref.cid
        if not cid:
            # A reference stored without its content hash: ask the repo for it.
            cid = self._read(ref.id, "reading the post replied to").cid or ""
        return models.ComAtprotoRepoStrongRef.Main(uri=ref.id, cid=cid)

    def _read(self, uri: str, what: str) -> Any:
        """The record at ``uri`` (com.atproto.repo.getRecord), with its cid."""
        repo, collection, rkey = split_uri(uri)
        sdk = self._client.sdk
        return self._client(
            what,
            lambda: sdk.com.atproto.repo.get_record(
                {"repo": repo, "collection": collection, "rkey": rkey}
            ),
        )

    def _images(self, attachments: Sequence[Attachment]) -> models.AppBskyEmbedImages.Main | None:
        if not attachments:
            return None
        images = []
        for attachment in attachments[:MAX_IMAGES]:
            try:
                data = attachment.path.read_bytes()
                with Image.open(attachment.path) as picture:
                    width, height = picture.size
                    mime = Image.MIME.get(picture.format or "", "application/octet-stream")
            except (OSError, UnidentifiedImageError) as exc:
                raise errors.Rejected(f"cannot read the image {attachment.path}: {exc}") from exc
            blob = self._upload(data, mime)
            images.append(
                models.AppBskyEmbedImages.Image(
                    alt=attachment.alt,
                    image=blob,
                    aspect_ratio=models.AppBskyEmbedDefs.AspectRatio(width=width, height=height),
                )
            )
        return models.AppBskyEmbedImages.Main(images=images)

    def _upload(self, data: bytes, mime: str) -> Any:
        # Raw bytes as the body (the SDK's upload_blob passes them in a way
        # httpx deprecates).
        sdk = self._client.sdk
        response = self._client(
            "uploading an image",
            lambda: sdk.invoke_procedure(
                "com.atproto.repo.uploadBlob", content=data, headers={"Content-Type": mime}
            ),
        )
        try:
            return models.ComAtprotoRepoUploadBlob.Response.model_validate(response.content).blob
        except ValueError as exc:
            raise errors.Transient(f"uploading an image: unexpected answer ({exc})") from exc

    def _resolve_handle(self, handle: str) -> str | None:
        handle = handle.lower()
        if handle not in self._dids:
            sdk = self._client.sdk
            try:
                answer = self._client(
                    f"resolving @{handle}",
                    lambda: sdk.com.atproto.identity.resolve_handle({"handle": handle}),
                )
                self._dids[handle] = answer.did
            except errors.Rejected:
                self._dids[handle] = None  # 400: the handle does not resolve
        return self._dids[handle]
