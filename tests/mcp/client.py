"""Drives an MCP server with the official MCP Python SDK and reports what
happened as one JSON object on standard output.

The end-to-end tests (tests/e2e/mcp_*.rs) write a plan as one line of JSON
on standard input and assert on the report. A plan:

    {
      "server": {"url": "http://127.0.0.1:PORT/mcp", "headers": {...}}
             or {"command": "/path/to/airlock", "args": [...]},
      "mode": "auto" | "legacy",          # protocol negotiation of the SDK
      "elicitation": null | {"action": "accept" | "decline",
                             "run": ["cmd", "arg", ...]}  # run before answering
                          | {"action": "ask"},  # ask the test, see below
      "steps": [
        {"op": "list"},
        {"op": "call", "tool": "...", "arguments": {...}, "progress": false},
        {"op": "concurrent", "n": 200, "tool": "...", "arguments": {...}},
        {"op": "cancel", "tool": "...", "arguments": {...}, "after": 1.0}
      ]
    }

The report holds the negotiated protocol version, one result per step, the
elicitations the client received, the HTTP statuses it saw, and the error
that ended the session early, if any. It is the last line on standard
output.

With "action": "ask", each elicitation is written to standard output as one
line {"elicit": PARAMS}, and the answer is read from the next line of
standard input as {"action": "accept" | "decline" | "cancel"}: the test acts
as the user (it opens the consent URL) before it answers.
"""

import json
import subprocess
import sys
import time
import traceback

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def tool_dict(tool):
    return {
        "name": tool.name,
        "description": tool.description,
        "input_schema": tool.input_schema,
        "output_schema": tool.output_schema,
    }


def result_dict(result):
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    return {
        "is_error": bool(result.is_error),
        "structured": result.structured_content,
        "text": texts,
    }


def error_dict(exc):
    return {"type": type(exc).__name__, "message": str(exc), "code": getattr(getattr(exc, "error", None), "code", None)}


def leaf_errors(exc):
    """The innermost exceptions of an exception group."""
    if isinstance(exc, BaseExceptionGroup):
        out = []
        for inner in exc.exceptions:
            out.extend(leaf_errors(inner))
        return out
    return [exc]


async def run_step(client, step, report):
    op = step["op"]
    if op == "list":
        listed = await client.list_tools()
        return {"tools": [tool_dict(t) for t in listed.tools]}

    if op == "call":
        progress = []

        async def on_progress(value, total, message):
            progress.append({"progress": value, "message": message})

        try:
            result = await client.call_tool(
                step["tool"],
                step.get("arguments", {}),
                progress_callback=on_progress if step.get("progress") else None,
            )
        except Exception as exc:  # a protocol error is a result of the step
            return {"error": error_dict(exc)}
        out = result_dict(result)
        out["progress"] = progress
        return out

    if op == "concurrent":
        n = step["n"]
        outcomes = [None] * n

        async def one(i):
            try:
                result = await client.call_tool(step["tool"], step.get("arguments", {}))
                outcomes[i] = "error" if result.is_error else "ok"
            except Exception as exc:
                outcomes[i] = f"exception: {exc!r}"

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        failures = [o for o in outcomes if o != "ok"]
        return {
            "ok": n - len(failures),
            "failures": failures[:5],
            "seconds": round(time.monotonic() - started, 3),
        }

    if op == "cancel":
        started = time.monotonic()
        with anyio.move_on_after(step["after"]) as scope:
            await client.call_tool(step["tool"], step.get("arguments", {}))
        return {"cancelled": scope.cancelled_caught, "seconds": round(time.monotonic() - started, 3)}

    raise ValueError(f"unknown op {op!r}")


async def main(plan):
    report = {"protocol_version": None, "steps": [], "elicitations": [], "http_statuses": [], "error": None}
    settings = plan.get("elicitation")

    async def on_elicit(context, params):
        dumped = params.model_dump(mode="json", by_alias=True, exclude_none=True)
        report["elicitations"].append(dumped)
        if settings["action"] == "ask":
            sys.stdout.write(json.dumps({"elicit": dumped}) + "\n")
            sys.stdout.flush()
            answer = json.loads(await anyio.to_thread.run_sync(sys.stdin.readline))
            return types.ElicitResult(action=answer["action"])
        if settings.get("run"):
            # The user completes consent out of band before accepting.
            done = subprocess.run(settings["run"], input=settings.get("stdin", ""), text=True, capture_output=True)
            if done.returncode != 0:
                raise RuntimeError(f"consent command failed: {done.stderr}")
        return types.ElicitResult(action=settings["action"])

    async def on_response(response):
        report["http_statuses"].append(response.status_code)

    server = plan["server"]
    http = None
    if "url" in server:
        http = httpx2.AsyncClient(
            headers=server.get("headers", {}),
            timeout=httpx2.Timeout(30.0, read=300.0),
            limits=httpx2.Limits(max_connections=400, max_keepalive_connections=400),
            event_hooks={"response": [on_response]},
        )
        target = streamable_http_client(server["url"], http_client=http)
    else:
        target = StdioServerParameters(command=server["command"], args=server.get("args", []), env=server.get("env"))

    try:
        async with Client(
            target,
            mode=plan.get("mode", "auto"),
            elicitation_callback=on_elicit if settings else None,
            read_timeout_seconds=120,
        ) as client:
            report["protocol_version"] = client.protocol_version
            for step in plan["steps"]:
                report["steps"].append(await run_step(client, step, report))
    except BaseException as exc:
        errors = leaf_errors(exc)
        report["error"] = [error_dict(e) for e in errors]
        traceback.print_exception(exc, file=sys.stderr)
    finally:
        if http is not None:
            await http.aclose()
    return report


if __name__ == "__main__":
    plan = json.loads(sys.stdin.readline())
    report = anyio.run(main, plan)
    json.dump(report, sys.stdout, default=str)
    sys.stdout.write("\n")
