/* The Lua scripts of the redis stock plugin; the key layout and reply shape are in
 * scripts.h. Redis runs each script atomically, so every guarantee written above a
 * script holds however many daemons and connections run it at the same time.
 * Numbers travel as decimal strings in ARGV; ids are compared as strings. */
#include "scripts.h"

/*
 * publish — KEYS: meta, stock. ARGV: activity_id, limit, price_cents, starts_at_ms,
 * ends_at_ms, initial.
 * Guarantees: the first call creates meta (state open, initial) and sets stock to
 * initial; every later call only rewrites the sale fields (activity, limit, price,
 * window) and never touches stock, initial or state, so publishing twice (a retry,
 * a restarted scheduler) never resets a stock that is already selling nor reopens a
 * paused or closed item. Replies { 0, initial, remaining, 0, state }.
 */
static const char publish_lua[] =
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  redis.call('HSET', KEYS[1], 'activity_id', ARGV[1], 'limit', ARGV[2], 'price_cents', ARGV[3],\n"
    "             'starts_at_ms', ARGV[4], 'ends_at_ms', ARGV[5], 'state', 'open', 'initial', ARGV[6])\n"
    "  redis.call('SET', KEYS[2], ARGV[6])\n"
    "else\n"
    "  redis.call('HSET', KEYS[1], 'activity_id', ARGV[1], 'limit', ARGV[2], 'price_cents', ARGV[3],\n"
    "             'starts_at_ms', ARGV[4], 'ends_at_ms', ARGV[5])\n"
    "end\n"
    "local m = redis.call('HMGET', KEYS[1], 'initial', 'state')\n"
    "return {0, tonumber(m[1] or '0'), tonumber(redis.call('GET', KEYS[2]) or '0'), 0, S[m[2] or ''] or -1}\n";

/*
 * query — KEYS: meta, stock. No ARGV. Read only.
 * Replies { 0, initial, remaining, 0, state }, or { 1, 0, 0, 0, -1 } when the item
 * is not published.
 */
static const char query_lua[] =
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "local m = redis.call('HMGET', KEYS[1], 'initial', 'state')\n"
    "if not m[1] then return {1, 0, 0, 0, -1} end\n"
    "return {0, tonumber(m[1]), tonumber(redis.call('GET', KEYS[2]) or '0'), 0, S[m[2] or ''] or -1}\n";

/*
 * set_state — KEYS: meta, stock. ARGV: open|paused|closed.
 * Guarantees: only the state field of a published item changes (the kill switch
 * touches nothing else); closed is final: a closed item is never reopened (code 2,
 * nothing changes). Replies { 0, initial, remaining, 0, new state }, { 1, … } when
 * the item is not published.
 */
static const char set_state_lua[] =
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "local m = redis.call('HMGET', KEYS[1], 'initial', 'state')\n"
    "if not m[1] then return {1, 0, 0, 0, -1} end\n"
    "local left = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "if m[2] == 'closed' and ARGV[1] ~= 'closed' then return {2, tonumber(m[1]), left, 0, 2} end\n"
    "redis.call('HSET', KEYS[1], 'state', ARGV[1])\n"
    "return {0, tonumber(m[1]), left, 0, S[ARGV[1]]}\n";

/*
 * add_units — KEYS: meta, stock. ARGV: units (> 0, checked by the caller).
 * Guarantees: stock and initial of a published item both grow by exactly `units`
 * (INCRBY on the live values, never a SET), so units reserved + units left =
 * initial still holds and no concurrent reservation is lost. Replies { 0, initial,
 * remaining, 0, state }, { 1, … } when the item is not published (nothing changes).
 */
static const char add_units_lua[] = "local S = {open = 0, paused = 1, closed = 2}\n"
                                    "local state = redis.call('HGET', KEYS[1], 'state')\n"
                                    "if not state then return {1, 0, 0, 0, -1} end\n"
                                    "local initial = redis.call('HINCRBY', KEYS[1], 'initial', ARGV[1])\n"
                                    "local left = redis.call('INCRBY', KEYS[2], ARGV[1])\n"
                                    "return {0, initial, left, 0, S[state] or -1}\n";

/*
 * reserve — KEYS: meta, stock, buyers, orders, log, seq. ARGV: user_id, order_no,
 * now_ms, expires_at_ms, activity_id, item_id, deadline_ms.
 * Guarantees, in this order: a reservation that runs after deadline_ms of Redis'
 * own clock (0: no deadline) changes nothing (code 9: the daemon has given up on it
 * and told the buyer so, so it must not take a unit); a retry of an order number that already holds a unit
 * for this buyer answers RESERVED again with the same order, without taking a second
 * unit (code 7 if the number belongs to another buyer); the item is published for
 * this activity and open (else NOT_ON_SALE 6 / PAUSED 5); now is in [starts_at,
 * ends_at) (else NOT_STARTED 3 / ENDED 4); the buyer holds fewer units than the limit
 * (else LIMIT_REACHED 2); a unit is left (else SOLD_OUT 1). Only then, all at once:
 * stock -1, the buyer's count +1, the buyer's seq +1 (never decreases), the pre-order
 * in orders[order_no], and one entry appended to the log stream. A refusal changes
 * nothing. Never oversells: the stock never goes below zero. Replies { outcome,
 * initial, remaining, units the buyer holds, state, user, seq, activity, price,
 * reserved_at_ms, expires_at_ms } (the order fields 0 unless RESERVED).
 */
static const char reserve_lua[] =
    "if ARGV[7] ~= '0' then\n"
    "  local t = redis.call('TIME')\n"
    "  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[7]) then\n"
    "    return {9, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0}\n"
    "  end\n"
    "end\n"
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "local m = redis.call('HMGET', KEYS[1], 'state', 'starts_at_ms', 'ends_at_ms', 'limit', 'activity_id',\n"
    "                     'price_cents', 'initial')\n"
    "if not m[1] or m[5] ~= ARGV[5] then return {6, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0} end\n"
    "local initial = tonumber(m[7])\n"
    "local left = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local held = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')\n"
    "local st = S[m[1]] or -1\n"
    "local function refuse(code) return {code, initial, left, held, st, 0, 0, 0, 0, 0, 0} end\n"
    "local pre = redis.call('HGET', KEYS[4], ARGV[2])\n"
    "if pre then\n"
    "  local u, q, a, p, r, e = string.match(pre, '^(%d+):(%d+):(%d+):(%-?%d+):(%d+):(%d+)$')\n"
    "  if u ~= ARGV[1] then return refuse(7) end\n"
    "  return {0, initial, left, held, st, tonumber(u), tonumber(q), tonumber(a), tonumber(p), tonumber(r),\n"
    "          tonumber(e)}\n"
    "end\n"
    "if m[1] == 'paused' then return refuse(5) end\n"
    "if m[1] ~= 'open' then return refuse(6) end\n"
    "local now = tonumber(ARGV[3])\n"
    "if now < tonumber(m[2]) then return refuse(3) end\n"
    "if now >= tonumber(m[3]) then return refuse(4) end\n"
    "if held >= tonumber(m[4]) then return refuse(2) end\n"
    "if left <= 0 then return refuse(1) end\n"
    "left = redis.call('DECR', KEYS[2])\n"
    "held = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)\n"
    "local seq = redis.call('HINCRBY', KEYS[6], ARGV[1], 1)\n"
    "redis.call('HSET', KEYS[4], ARGV[2], table.concat({ARGV[1], seq, m[5], m[6], ARGV[3], ARGV[4]}, ':'))\n"
    "redis.call('XADD', KEYS[5], '*', 'order_no', ARGV[2], 'user_id', ARGV[1], 'activity_id', m[5],\n"
    "           'item_id', ARGV[6], 'seq', seq, 'price_cents', m[6], 'reserved_at_ms', ARGV[3],\n"
    "           'expires_at_ms', ARGV[4])\n"
    "return {0, initial, left, held, st, tonumber(ARGV[1]), seq, tonumber(m[5]), tonumber(m[6]),\n"
    "        tonumber(ARGV[3]), tonumber(ARGV[4])}\n";

/*
 * release — KEYS: meta, stock, buyers, orders. ARGV: order_no, user_id.
 * Guarantees: the unit of an order goes back exactly once: only when order_no is
 * still in orders (then HDEL, stock +1, the buyer's count -1, the buyer's field
 * deleted at 0, changed = 1); any later call, or a call for an unknown order, changes
 * nothing (changed = 0). An order of another buyer is refused (code 7, nothing
 * changes). Works in every state, as a closed order's unit goes back even after the
 * sale. The buyer's seq is left alone. Replies { 0, initial, remaining, units the
 * buyer holds, state, changed }.
 */
static const char release_lua[] =
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "local m = redis.call('HMGET', KEYS[1], 'initial', 'state')\n"
    "local initial = tonumber(m[1] or '0')\n"
    "local st = S[m[2] or ''] or -1\n"
    "local left = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local held = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')\n"
    "local pre = redis.call('HGET', KEYS[4], ARGV[1])\n"
    "if not pre then return {0, initial, left, held, st, 0} end\n"
    "local owner = string.match(pre, '^(%d+):')\n"
    "if owner ~= ARGV[2] then return {7, initial, left, held, st, 0} end\n"
    "redis.call('HDEL', KEYS[4], ARGV[1])\n"
    "left = redis.call('INCR', KEYS[2])\n"
    "held = redis.call('HINCRBY', KEYS[3], owner, -1)\n"
    "if held <= 0 then\n"
    "  redis.call('HDEL', KEYS[3], owner)\n"
    "  held = 0\n"
    "end\n"
    "return {0, initial, left, held, st, 1}\n";

/*
 * get_order — KEYS: meta, stock, buyers, orders. ARGV: order_no. Read only.
 * Replies { 0, initial, remaining, 0, state, user, seq, activity, price,
 * reserved_at_ms, expires_at_ms } for a held order, { 8, … } when the store does not
 * hold it (never reserved here, or its unit was released).
 */
static const char get_order_lua[] =
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "local m = redis.call('HMGET', KEYS[1], 'initial', 'state')\n"
    "local initial = tonumber(m[1] or '0')\n"
    "local st = S[m[2] or ''] or -1\n"
    "local left = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local pre = redis.call('HGET', KEYS[4], ARGV[1])\n"
    "if not pre then return {8, initial, left, 0, st, 0, 0, 0, 0, 0, 0} end\n"
    "local u, q, a, p, r, e = string.match(pre, '^(%d+):(%d+):(%d+):(%-?%d+):(%d+):(%d+)$')\n"
    "return {0, initial, left, 0, st, tonumber(u), tonumber(q), tonumber(a), tonumber(p), tonumber(r),\n"
    "        tonumber(e)}\n";

const struct sk_rstock_script_def sk_rstock_scripts[RS_NSCRIPTS] = {
    [RS_PUBLISH] = {.name = "publish", .text = publish_lua, .nkeys = 2},
    [RS_QUERY] = {.name = "query", .text = query_lua, .nkeys = 2},
    [RS_SET_STATE] = {.name = "set_state", .text = set_state_lua, .nkeys = 2},
    [RS_ADD_UNITS] = {.name = "add_units", .text = add_units_lua, .nkeys = 2},
    [RS_RESERVE] = {.name = "reserve", .text = reserve_lua, .nkeys = 6},
    [RS_RELEASE] = {.name = "release", .text = release_lua, .nkeys = 4},
    [RS_GET_ORDER] = {.name = "get_order", .text = get_order_lua, .nkeys = 4},
};
