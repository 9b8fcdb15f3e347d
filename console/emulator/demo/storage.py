"""Step 1 of the seed's upload workflow: a mutation that hands out an upload URL."""

from console.emulator.functions import mutation
from console.emulator.validators import v


@mutation(args={}, returns=v.string())
def generateUploadUrl(ctx, args):
    return ctx.storage.generate_upload_url()
