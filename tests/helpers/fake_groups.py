"""The worker's group routes (contract-26, "Worker") for ``StandInWorker``: groups held in memory, answered with the
worker's shapes and refusals (404 group_not_found, 403 not_admin, 409 not_connected, per-participant results), and
every request it got kept in ``requests`` so a test sees exactly what the gateway forwarded."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

ME = "+15550001111"  # the account's own number
NOT_ON_WHATSAPP = "+15550009999"
PRIVATE = "+15550008888"  # refuses being added (privacy: groups_add nobody)


def _error(status: int, code: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": code.replace("_", " ")}}, status=status)


class StandInGroups:
    def __init__(self, worker: Any):
        self._worker = worker  # its ``state`` says whether the session is connected
        self.groups: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []  # (method, path as the worker saw it, body)
        self._ids = itertools.count(120363000000000001)

    def add(self, subject: str, members: dict[str, str | None], *, role: str | None = "superadmin") -> str:
        """A group the account is in (``role`` its own admin flag); ``members``: phone -> admin flag."""
        gid = f"{next(self._ids)}@g.us"
        self.groups[gid] = {"subject": subject, "description": None, "invite": "Inv1te" + gid[-11:-5],
                            "members": {ME: role, **members}}
        return gid

    def register(self, app: web.Application, prefix: str) -> None:
        route = app.router.add_route
        route("GET", prefix + "/groups", self._handle(self._list))
        route("POST", prefix + "/groups", self._handle(self._create))
        route("POST", prefix + "/groups/join", self._handle(self._join))
        route("GET", prefix + "/groups/{id}", self._handle(self._get))
        route("PATCH", prefix + "/groups/{id}", self._handle(self._update))
        route("POST", prefix + "/groups/{id}/participants", self._handle(self._participants))
        route("GET", prefix + "/groups/{id}/invite", self._handle(self._invite))
        route("DELETE", prefix + "/groups/{id}/invite", self._handle(self._invite))
        route("POST", prefix + "/groups/{id}/leave", self._handle(self._leave))

    def _handle(self, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.Response:
            body = await request.json() if request.can_read_body else None
            self.requests.append((request.method, request.path, body))
            if self._worker.state != "connected":
                return _error(409, "not_connected")
            gid = request.match_info.get("id")
            if gid is not None and ME not in self.groups.get(gid, {}).get("members", {}):
                return _error(404, "group_not_found")
            return await handler(request, gid, body)
        return wrapped

    def metadata(self, gid: str) -> dict[str, Any]:
        group = self.groups[gid]
        return {"id": gid, "subject": group["subject"], "description": group["description"], "owner": ME,
                "created_at": 1700000000, "announce": False, "restrict": False,
                "participants": [{"phone_number": p, "lid": f"{p[1:]}0@lid", "admin": a}
                                 for p, a in group["members"].items()]}

    def _results(self, group: dict[str, Any], action: str, numbers: list[str]) -> list[dict[str, Any]]:
        results = []
        for number in numbers:
            members = group["members"]
            if number == NOT_ON_WHATSAPP:
                results.append({"phone_number": number, "status": 404, "code": "not_on_whatsapp"})
            elif action == "add" and number == PRIVATE:
                results.append({"phone_number": number, "status": 403, "code": "privacy"})
            elif (action == "add") == (number in members):
                results.append({"phone_number": number, "status": 409})
            else:
                if action == "add":
                    members[number] = None
                elif action == "remove":
                    del members[number]
                else:
                    members[number] = "admin" if action == "promote" else None
                results.append({"phone_number": number, "status": 200})
        return results

    async def _list(self, request: web.Request, gid: None, body: Any) -> web.Response:
        return web.json_response({"groups": [
            {"id": g, "subject": v["subject"], "participants_count": len(v["members"]),
             "role": v["members"][ME] or "member"} for g, v in self.groups.items() if ME in v["members"]]})

    async def _create(self, request: web.Request, gid: None, body: Any) -> web.Response:
        new = self.add(body["subject"], {})
        results = self._results(self.groups[new], "add", body["participants"])
        return web.json_response({**self.metadata(new), "results": results})

    async def _get(self, request: web.Request, gid: str, body: Any) -> web.Response:
        return web.json_response(self.metadata(gid))

    def _admin(self, gid: str) -> bool:
        return self.groups[gid]["members"][ME] is not None

    async def _update(self, request: web.Request, gid: str, body: Any) -> web.Response:
        if not self._admin(gid):
            return _error(403, "not_admin")
        self.groups[gid].update(body)
        return web.json_response(self.metadata(gid))

    async def _participants(self, request: web.Request, gid: str, body: Any) -> web.Response:
        if not self._admin(gid):
            return _error(403, "not_admin")
        (action, numbers), = body.items()
        return web.json_response({"results": self._results(self.groups[gid], action, numbers)})

    async def _invite(self, request: web.Request, gid: str, body: Any) -> web.Response:
        if not self._admin(gid):
            return _error(403, "not_admin")
        group = self.groups[gid]
        if request.method == "DELETE":
            group["invite"] = group["invite"][::-1]
        return web.json_response({"code": group["invite"], "link": "https://chat.whatsapp.com/" + group["invite"]})

    async def _join(self, request: web.Request, gid: None, body: Any) -> web.Response:
        found = next((g for g, v in self.groups.items() if v["invite"] == body["code"]), None)
        if found is None:
            return _error(404, "group_not_found")
        self.groups[found]["members"][ME] = None
        return web.json_response({"id": found})

    async def _leave(self, request: web.Request, gid: str, body: Any) -> web.Response:
        del self.groups[gid]["members"][ME]
        return web.json_response({"id": gid})
