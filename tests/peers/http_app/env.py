from console.emulator.functions import query
from console.emulator.validators import v


@query(args={"name": v.string()})
def read(ctx, args):
    return ctx.env.get(args["name"])
