"""File metadata for uploads to storage (the seed's upload workflow)."""

from console.emulator.functions import mutation, query
from console.emulator.validators import v

from ._util import now_ms
from .schema import file_doc


@mutation(args={}, returns=v.string())
def generateUploadUrl(ctx, args):
    return ctx.storage.generate_upload_url()


@mutation(
    args={
        "storageId": v.id("_storage"),
        "filename": v.string(),
        "contentType": v.string(),
        "uploadedBy": v.optional(v.id("users")),
    },
    returns=v.id("files"),
)
def saveFile(ctx, args):
    return ctx.db.insert("files", {**args, "createdAt": now_ms()})


@query(args={"storageId": v.id("_storage")}, returns=v.union(v.string(), v.null()))
def getFileUrl(ctx, args):
    """Always ctx.storage.get_url(), never a hand-built URL (the seed's rule)."""
    return ctx.storage.get_url(args["storageId"])


@query(args={"limit": v.optional(v.number())}, returns=v.array(file_doc))
def list(ctx, args):  # noqa: A001 - the Convex function is called `list`
    return ctx.db.query("files").order("desc").take(int(args.get("limit", 100)))


@mutation(args={"id": v.id("files")}, returns=v.null())
def deleteFile(ctx, args):
    """Delete the metadata and the stored file."""
    doc = ctx.db.get(args["id"])
    if doc is not None:
        ctx.storage.delete(doc["storageId"])
        ctx.db.delete(args["id"])
