// The worker's group routes (issue 26; shapes in node_worker/api/openapi.json): the request checked here (400
// invalid_group_id, invalid_participants, invalid_message, unknown_field), the work in session/groups.js.
// `{group_id}` in a route is one path segment (percent-decoded), matched by server.js.
import { WorkerError } from './errors.js'
import { isE164 } from './phone.js'
import { SEND_FAILURE } from './states.js'
import { isGroupId } from './session/group-metadata.js'

export const MAX_PARTICIPANTS = 1024 // WhatsApp's limit of a group
export const MAX_SUBJECT = 100 // WhatsApp's limits of a subject and a description (its apps refuse longer ones)
export const MAX_DESCRIPTION = 2048
export const PARTICIPANT_ACTIONS = Object.freeze(['add', 'remove', 'promote', 'demote'])
const INVITE_CODE = /^[A-Za-z0-9_-]{6,64}$/

const invalid = (message) => new WorkerError(400, SEND_FAILURE.INVALID_MESSAGE, message)
const chars = (s) => [...s].length

/** The group id of a path segment (percent-decoded), else 400 invalid_group_id. */
export function groupIdOf (segment) {
  let id
  try {
    id = decodeURIComponent(segment)
  } catch {
    id = null
  }
  return checkGroupId(id)
}

export function checkGroupId (id, name = 'group id') {
  if (!isGroupId(id)) throw new WorkerError(400, SEND_FAILURE.INVALID_GROUP_ID, `The ${name} must be a WhatsApp group id (digits@g.us or digits-digits@g.us, at most 64 characters).`)
  return id
}

// 1 to 1,024 distinct +E.164 numbers.
const phones = (v, name) => {
  if (!Array.isArray(v) || v.length < 1 || v.length > MAX_PARTICIPANTS) {
    throw new WorkerError(400, SEND_FAILURE.INVALID_PARTICIPANTS, `${name} must be a list of 1 to ${MAX_PARTICIPANTS} phone numbers (+E.164).`)
  }
  for (const p of v) if (!isE164(p)) throw new WorkerError(400, SEND_FAILURE.INVALID_PHONE_NUMBER, `Each of ${name} must be a phone number in +E.164.`)
  return [...new Set(v)]
}
const subjectOf = (v) => {
  if (typeof v !== 'string' || !v.trim() || v.includes('\u0000') || chars(v) > MAX_SUBJECT) throw invalid(`subject must be 1 to ${MAX_SUBJECT} characters (not blank).`)
  return v
}
const descriptionOf = (v) => {
  if (typeof v !== 'string' || v.includes('\u0000') || chars(v) > MAX_DESCRIPTION) throw invalid(`description must be at most ${MAX_DESCRIPTION} characters ("" removes it).`)
  return v
}

/**
 * The group routes, as server.js's per-account routes: (req, url, account, params) with `params.group_id` for the
 * routes that name one; `readJson(req, fields)` reads a body that takes only `fields`.
 */
export function groupRoutes (readJson) {
  return {
    'GET /groups': async (req, url, { session }) => session.groups.list(),
    'POST /groups': async (req, url, { session }) => {
      const body = await readJson(req, ['subject', 'participants'])
      return session.groups.create(subjectOf(body.subject), phones(body.participants, 'participants'))
    },
    'POST /groups/join': async (req, url, { session }) => {
      const body = await readJson(req, ['code'])
      const code = typeof body.code === 'string' ? body.code.replace(/^https:\/\/chat\.whatsapp\.com\//, '') : null
      if (!code || !INVITE_CODE.test(code)) throw invalid('code must be a group invite code (or its https://chat.whatsapp.com/ link).')
      return session.groups.join(code)
    },
    'GET /groups/{group_id}': async (req, url, { session }, { group_id: id }) => session.groups.get(id),
    'PATCH /groups/{group_id}': async (req, url, { session }, { group_id: id }) => {
      const body = await readJson(req, ['subject', 'description'])
      if (body.subject == null && body.description == null) throw invalid('Give subject, description or both.')
      return session.groups.update(id, {
        subject: body.subject == null ? undefined : subjectOf(body.subject),
        description: body.description == null ? undefined : descriptionOf(body.description)
      })
    },
    'POST /groups/{group_id}/participants': async (req, url, { session }, { group_id: id }) => {
      const body = await readJson(req, PARTICIPANT_ACTIONS)
      const given = PARTICIPANT_ACTIONS.filter((a) => body[a] !== undefined)
      if (given.length !== 1) throw invalid(`Give exactly one of ${PARTICIPANT_ACTIONS.join(', ')}.`)
      return session.groups.participants(id, given[0], phones(body[given[0]], given[0]))
    },
    'GET /groups/{group_id}/invite': async (req, url, { session }, { group_id: id }) => session.groups.invite(id),
    'DELETE /groups/{group_id}/invite': async (req, url, { session }, { group_id: id }) => {
      await readJson(req, [])
      return session.groups.invite(id, { revoke: true })
    },
    'POST /groups/{group_id}/leave': async (req, url, { session }, { group_id: id }) => {
      await readJson(req, [])
      return session.groups.leave(id)
    }
  }
}
