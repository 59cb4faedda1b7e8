"""`baton mcp` driven by the official Python MCP client (`mcp` on PyPI)
over stdio and streamable HTTP, in front of a real `baton dev`: the tools
are listed with their schemas, each is called, bad arguments and refusals
come back as errors that name what is wrong; over HTTP each request's own
credential is forwarded and a request without one is refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import unittest
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Dict

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "proto" / "clients" / "python" / "tests"))
from baton_dev import BatonDev  # noqa: E402

TOOLS = {"evaluate_escalation", "hand_off_to_human", "get_handoff_status", "cancel_handoff"}

HANDOFF: Dict[str, Any] = {
    "target": {"queue": "support"},
    "summary": "Charged twice for the March invoice; wants a refund of the second charge",
    "reason": "explicit_request",
    "intent": "billing.dispute",
    "entities": [
        {"name": "account_number", "value": "12345678", "sensitive": True},
        {"name": "issue_type", "value": "double charge"},
    ],
    "transcript": [
        {"speaker": "customer", "text": "I was charged twice in March"},
        {"speaker": "ai", "text": "I can see two charges; let me check"},
        {"speaker": "customer", "text": "Just put me through to a person please"},
    ],
}


def baton_binary() -> str:
    return os.environ.get("BATON_BIN") or str(Path(__file__).resolve().parents[2] / "target/release/baton")


class BatonMcp(unittest.TestCase):
    dev: BatonDev

    @classmethod
    def setUpClass(cls) -> None:
        cls.dev = BatonDev()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.dev.stop()

    @asynccontextmanager
    async def session(self, api_key: str = "") -> AsyncIterator[ClientSession]:
        binary = baton_binary()
        env = {"BATON_API_KEY": api_key or self.dev.api_key, "PATH": os.environ.get("PATH", "")}
        server = StdioServerParameters(
            command=binary, args=["mcp", "--endpoint", f"http://{self.dev.address}"], env=env
        )
        async with stdio_client(server) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session

    async def call(self, session: ClientSession, tool: str, arguments: Dict[str, Any]) -> Dict[str, Any]:
        """The tool's JSON result; fails the test if the tool reported an error."""
        result = await session.call_tool(tool, arguments)
        body = json.loads(result.content[0].text)  # type: ignore[union-attr]
        self.assertFalse(result.is_error, body)
        return body  # type: ignore[no-any-return]

    async def refusal(self, session: ClientSession, tool: str, arguments: Dict[str, Any]) -> Dict[str, Any]:
        """The error a tool reported; fails the test if it succeeded."""
        result = await session.call_tool(tool, arguments)
        self.assertTrue(result.is_error, result)
        return json.loads(result.content[0].text)  # type: ignore[union-attr,no-any-return]

    def test_tools_are_listed_with_schemas_and_instructions(self) -> None:
        async def run() -> None:
            async with self.session() as session:
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                self.assertEqual(set(tools), TOOLS)
                for tool in tools.values():
                    self.assertGreater(len(tool.description or ""), 80, tool.name)
                    self.assertEqual(tool.input_schema["type"], "object")
                hand_off = tools["hand_off_to_human"].input_schema
                self.assertEqual(set(hand_off["required"]), {"target", "summary", "reason"})
                self.assertIn("summary", hand_off["properties"])
                self.assertIn("never repeat", session.instructions or "")

        asyncio.run(run())

    def test_evaluate_then_hand_off_and_follow_to_the_end(self) -> None:
        async def run() -> None:
            async with self.session() as session:
                decision = await self.call(
                    session,
                    "evaluate_escalation",
                    {
                        "conversation_id": "mcp-1",
                        "turns": [{"speaker": "customer", "text": "I want to talk to a person"}],
                        "language": "en",
                    },
                )
                self.assertTrue(decision["escalate"])
                self.assertEqual(decision["triggers"][0]["kind"], "EXPLICIT_REQUEST")
                self.assertTrue(decision["say"])

                created = await self.call(session, "hand_off_to_human", HANDOFF)
                self.assertTrue(created["created"])
                self.assertTrue(created["say"].startswith("I'm connecting you with a specialist"))
                # The same call again (an agent's retry) names the same handoff.
                again = await self.call(session, "hand_off_to_human", HANDOFF)
                self.assertFalse(again["created"])
                self.assertEqual(again["handoff_id"], created["handoff_id"])

                states = []
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    status = await self.call(session, "get_handoff_status", {"handoff_id": created["handoff_id"]})
                    states.append(status["state"])
                    if status["ended"]:
                        break
                    await asyncio.sleep(0.5)
                self.assertEqual(states[-1], "COMPLETED", states)
                self.assertIn("QUEUED", states)
                self.assertEqual(status["say"], "", "nothing to say once it ended")

                refused = await self.refusal(session, "cancel_handoff", {"handoff_id": created["handoff_id"]})
                self.assertEqual(refused["reason"], "HANDOFF_ENDED")

        asyncio.run(run())

    def test_cancel(self) -> None:
        async def run() -> None:
            async with self.session() as session:
                created = await self.call(session, "hand_off_to_human", {**HANDOFF, "summary": "Cancel me"})
                cancelled = await self.call(
                    session, "cancel_handoff", {"handoff_id": created["handoff_id"], "reason": "customer hung up"}
                )
                self.assertEqual(cancelled["state"], "CANCELLED")
                self.assertTrue(cancelled["ended"])
                self.assertEqual(cancelled["failure_reason"], "CANCELLED")

        asyncio.run(run())

    def test_a_bad_field_is_named(self) -> None:
        async def run() -> None:
            async with self.session() as session:
                refused = await self.refusal(
                    session, "hand_off_to_human", {**HANDOFF, "target": {"phone_number": "555-0100"}}
                )
                self.assertEqual(refused["error"], "InvalidArgument")
                self.assertEqual(refused["reason"], "INVALID_ARGUMENT")
                self.assertEqual(refused["invalid_fields"][0]["field"], "target.phone_number")

        asyncio.run(run())

    def test_arguments_outside_the_schema_are_refused(self) -> None:
        async def run() -> None:
            async with self.session() as session:
                for arguments in (
                    {k: v for k, v in HANDOFF.items() if k != "summary"},
                    {**HANDOFF, "reason": "bored"},
                    {**HANDOFF, "target": {"fax": "+14155550100"}},
                    {**HANDOFF, "colour": "blue"},
                ):
                    result = await session.call_tool("hand_off_to_human", arguments)
                    self.assertTrue(result.is_error, arguments)

        asyncio.run(run())

    def test_a_wrong_credential_is_refused(self) -> None:
        async def run() -> None:
            async with self.session(api_key="bk_0000000000000000_wrong") as session:
                refused = await self.refusal(session, "get_handoff_status", {"handoff_id": "x"})
                self.assertEqual(refused["reason"], "CREDENTIAL_INVALID")
                self.assertNotIn("bk_0000000000000000_wrong", json.dumps(refused))

        asyncio.run(run())


class BatonMcpOverHttp(unittest.TestCase):
    """`baton mcp --listen`: the same tools over streamable HTTP, started
    with a valid operator key in its environment to show it is never used
    in place of the caller's."""

    dev: BatonDev
    server: "subprocess.Popen[str]"
    url: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.dev = BatonDev()
        cls.server = subprocess.Popen(
            [baton_binary(), "mcp", "--listen", "127.0.0.1:0", "--endpoint", f"http://{cls.dev.address}"],
            env={"BATON_API_KEY": cls.dev.api_key, "PATH": os.environ.get("PATH", "")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert cls.server.stderr is not None
        line = cls.server.stderr.readline()
        prefix = "baton mcp: streamable HTTP on "
        if not line.startswith(prefix):
            cls.server.kill()
            cls.dev.stop()
            raise RuntimeError(f"baton mcp --listen printed {line!r}")
        cls.url = line[len(prefix) :].strip()

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.server.poll() is None:
            cls.server.kill()
            cls.server.wait(10)
        assert cls.server.stderr is not None
        cls.server.stderr.close()
        cls.dev.stop()

    @asynccontextmanager
    async def session(self, api_key: str) -> AsyncIterator[ClientSession]:
        client = create_mcp_http_client(headers={"Authorization": f"Bearer {api_key}"})
        async with client, streamable_http_client(self.url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session

    def test_the_tools_work_with_the_callers_credential(self) -> None:
        async def run() -> None:
            async with self.session(self.dev.api_key) as session:
                tools = {tool.name for tool in (await session.list_tools()).tools}
                self.assertEqual(tools, TOOLS)
                decision = await session.call_tool(
                    "evaluate_escalation",
                    {"conversation_id": "mcp-http-1", "turns": [{"speaker": "customer", "text": "get me a human"}]},
                )
                self.assertFalse(decision.is_error, decision)
                self.assertTrue(json.loads(decision.content[0].text)["escalate"])  # type: ignore[union-attr]
                created = await session.call_tool("hand_off_to_human", {**HANDOFF, "summary": "Over HTTP"})
                self.assertFalse(created.is_error, created)
                handoff_id = json.loads(created.content[0].text)["handoff_id"]  # type: ignore[union-attr]
                cancelled = await session.call_tool("cancel_handoff", {"handoff_id": handoff_id})
                self.assertEqual(json.loads(cancelled.content[0].text)["state"], "CANCELLED")  # type: ignore[union-attr]

        asyncio.run(run())

    def test_a_wrong_credential_is_refused_by_the_control_service(self) -> None:
        async def run() -> None:
            async with self.session("bk_0000000000000000_wrong") as session:
                result = await session.call_tool("get_handoff_status", {"handoff_id": "x"})
                self.assertTrue(result.is_error, result)
                refused = json.loads(result.content[0].text)  # type: ignore[union-attr]
                self.assertEqual(refused["reason"], "CREDENTIAL_INVALID")

        asyncio.run(run())

    def test_a_request_without_a_credential_gets_401(self) -> None:
        async def run() -> None:
            async with create_mcp_http_client() as client:
                response = await client.post(
                    self.url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                    headers={"Accept": "application/json, text/event-stream"},
                )
                self.assertEqual(response.status_code, 401)
                self.assertEqual(response.headers.get("www-authenticate"), "Bearer")

        asyncio.run(run())

    def test_sigterm_stops_it_cleanly(self) -> None:
        server = subprocess.Popen(
            [baton_binary(), "mcp", "--listen", "127.0.0.1:0", "--endpoint", f"http://{self.dev.address}"],
            env={"PATH": os.environ.get("PATH", "")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert server.stderr is not None
        self.assertIn("streamable HTTP on", server.stderr.readline())
        server.send_signal(signal.SIGTERM)
        self.assertEqual(server.wait(20), 0)
        server.stderr.close()


if __name__ == "__main__":
    unittest.main()
