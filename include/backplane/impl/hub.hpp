// backplane/impl/hub.hpp - basic_hub's members; included by backplane/hub.hpp.
#ifndef BACKPLANE_IMPL_HUB_HPP
#define BACKPLANE_IMPL_HUB_HPP

#include <asio/associated_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <random>
#include <tuple>
#include <stdexcept>
#include <type_traits>

namespace backplane {

namespace detail {

// Calls an Asio completion handler with `args` on its associated executor
// (the hub's by default). A policy's handler types are copyable
// std::functions; completion handlers may be move-only (a coroutine's), so
// they travel in a shared holder.
template <class Handler>
class completion {
public:
    completion(Handler h, asio::any_io_executor fallback)
        : handler_(std::make_shared<Handler>(std::move(h))), fallback_(std::move(fallback))
    {
    }

    template <class... Args>
    void operator()(Args&&... args) const
    {
        auto ex = asio::get_associated_executor(*handler_, fallback_);
        asio::dispatch(ex, [h = handler_, args = std::make_tuple(std::forward<Args>(args)...)]() mutable {
            std::apply(std::move(*h), std::move(args));
        });
    }

private:
    std::shared_ptr<Handler> handler_;
    asio::any_io_executor fallback_;
};

} // namespace detail

template <class Transport, class Broker, class Locator>
basic_hub<Transport, Broker, Locator>::basic_hub(Transport transport, Broker broker, Locator locator,
                                                 hub_options options)
    : transport_(std::move(transport)),
      broker_(std::move(broker)),
      locator_(std::move(locator)),
      options_(std::move(options)),
      room_channel_(options_.room_channel, "{room}"),
      user_channel_(options_.user_channel, "{user}"),
      instance_channel_(options_.instance_channel, "{instance}")
{
    if (options_.instance_id.empty())
        options_.instance_id = random_instance_id();
    if (validate_name(options_.instance_id, options_.max_name_length))
        throw std::invalid_argument("backplane: invalid instance id: " + options_.instance_id);
    if (options_.direct == direct_routing::instance_channel && std::is_same_v<Locator, locator::none>)
        throw std::invalid_argument("backplane: direct_routing::instance_channel needs a locator");
    if (options_.global_channels == 0 || options_.global_channels > 1024
        || (has_history_v<Broker> && options_.global_channels > 1))
        throw std::invalid_argument("backplane: global_channels must be 1 to 1024, and 1 with history");
    locator_.set_instance(options_.instance_id);
    broker_.set_message_handler([this](std::string_view channel, std::string_view id, std::string_view data) {
        on_message(channel, id, data);
    });
    own_global_ = options_.global_channel;
    if (options_.global_channels == 1)
        broker_.subscribe(options_.global_channel);
    else {
        const auto own = std::hash<std::string>()(options_.instance_id) % options_.global_channels;
        for (std::size_t i = 0; i < options_.global_channels; ++i)
            broker_.subscribe(options_.global_channel + ":" + std::to_string(i));
        own_global_ += ":" + std::to_string(own);
    }
    if (options_.direct == direct_routing::shared_channel)
        broker_.subscribe(options_.shared_direct_channel);
    else if (options_.direct == direct_routing::instance_channel)
        broker_.subscribe(instance_channel_.name(options_.instance_id));
}

template <class Transport, class Broker, class Locator>
basic_hub<Transport, Broker, Locator>::~basic_hub()
{
    broker_.set_message_handler(nullptr);
}

// ---- Connections ------------------------------------------------------------

template <class Transport, class Broker, class Locator>
connection_id basic_hub<Transport, Broker, Locator>::open_pending(connection_handle handle, std::string_view user,
                                                                   bool pending, std::error_code& ec)
{
    if ((ec = validate_name(user, options_.max_name_length)))
        return no_connection;
    auto [id, created] = registry_.open(std::move(handle), user, pending);
    if (created) {
        if (routes_users_by_channel())
            broker_.subscribe(user_channel_.name(user));
        locator_.user_online(user);
    }
    return id;
}

template <class Transport, class Broker, class Locator>
connection_id basic_hub<Transport, Broker, Locator>::open(connection_handle handle, std::string_view user,
                                                           std::error_code& ec)
{
    const bool first = registry_.user_size(user) == 0;
    const auto id = open_pending(std::move(handle), user, false, ec);
    if (id != no_connection)
        after_open(id, first, false);
    return id;
}

template <class Transport, class Broker, class Locator>
connection_id basic_hub<Transport, Broker, Locator>::open(connection_handle handle, std::string_view user,
                                                           std::error_code& ec, resume_point from,
                                                           recovery_handler done)
{
    static_assert(has_history_v<Broker>, "this Broker keeps no history");
    stream_id global, mine;
    if ((ec = validate_name(user, options_.max_name_length)))
        return no_connection;
    if ((!from.global.empty() && !parse_stream_id(from.global, global))
        || (!from.user.empty() && !parse_stream_id(from.user, mine))) {
        ec = error::invalid_stream_id;
        return no_connection;
    }
    if (!from.user.empty() && !routes_users_by_channel()) {
        ec = std::make_error_code(std::errc::operation_not_supported);
        return no_connection;
    }
    // Both memberships pending at once, so that neither list sees the
    // connection before its own catch-up is done.
    const bool first = registry_.user_size(user) == 0;
    const auto id = open_pending(std::move(handle), user, true, ec);
    const auto* s = registry_.get(id);
    start_or_activate(id, s->all.list, message_kind::broadcast, options_.global_channel,
                      from.global.empty() ? nullptr : &global, done);
    start_or_activate(id, s->user.list, message_kind::user, user_channel_.name(user), from.user.empty() ? nullptr : &mine,
                      std::move(done));
    after_open(id, first, !from.user.empty());
    return id;
}

// The user's first connection here takes what was kept for the user, a
// page at a time as the connection drains: a page is removed from the
// broker once it was written, so a connection lost, or too slow, takes no
// message with it. A connection that resumes its user channel has the
// replayable ones in its replay already: they are removed, and not sent twice.
template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::after_open(connection_id id, bool first, bool resumed_user)
{
    if constexpr (has_offline_messages_v<Broker>) {
        // Messages are kept for a user by send_to_user's Option B, and on the
        // user's channel only by a broker with publish_direct.
        const bool kept = options_.direct == direct_routing::instance_channel
                          || (routes_users_by_channel() && has_publish_direct_v<Broker>);
        if (!first || !kept)
            return;
        const std::string user(registry_.user_of(id));
        kept_takes_[user] = kept_take{++recovery_keys_, id, resumed_user, {}, {}, 0};
        read_kept(user);
    } else {
        (void)id, (void)first, (void)resumed_user;
    }
}

template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::read_kept(const std::string& user)
{
    if constexpr (has_offline_messages_v<Broker>) {
        const auto& t = kept_takes_.at(user);
        const std::string channel = routes_users_by_channel() ? user_channel_.name(user)
                                                              : instance_channel_.name(options_.instance_id);
        broker_.read_offline(user, channel, t.after, options_.offline_page,
                             [this, life = std::weak_ptr<char>(life_), user, key = t.key](
                                 std::error_code ec, std::vector<offline_message> page) {
                                 if (life.expired())
                                     return;
                                 auto it = kept_takes_.find(user);
                                 if (it == kept_takes_.end() || it->second.key != key)
                                     return; // closed, or handed to another connection
                                 if (ec || page.empty())
                                     return void(kept_takes_.erase(it)); // on an error, kept for the next
                                 it->second.page = std::move(page);
                                 it->second.next = 0;
                                 send_kept(user);
                             });
    }
}

// Sends what is left of the page, pausing where the transport reports
// backpressure; once it is written, removes it and reads the next.
template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::send_kept(const std::string& user)
{
    auto& t = kept_takes_.at(user);
    const connection_id id = t.conn;
    bool paused = false;
    while (t.next < t.page.size() && !paused) {
        const auto& m = t.page[t.next++];
        envelope e;
        if ((t.resumed_user && m.replayable) || decode(m.data, e))
            continue;
        paused = send_one(id, make_frame(e, m.id, true)) == send_status::backpressure;
        if (!dead_.empty())
            return close_dead(); // close() hands the take to another connection, or ends it
        ++stats_.offline_delivered;
    }
    after_written(id, [this, life = std::weak_ptr<char>(life_), user, key = t.key] {
        if (life.expired())
            return;
        auto it = kept_takes_.find(user);
        if (it == kept_takes_.end() || it->second.key != key)
            return;
        auto& take = it->second;
        if (take.next < take.page.size())
            return send_kept(user);
        std::vector<std::string> entries;
        entries.reserve(take.page.size());
        for (auto& m : take.page)
            entries.push_back(std::move(m.entry));
        const bool full = take.page.size() >= options_.offline_page;
        take.after = entries.back();
        take.page.clear();
        if constexpr (has_offline_messages_v<Broker>)
            broker_.remove_offline(user, std::move(entries), [this, life](std::error_code e) {
                if (e && !life.expired())
                    ++stats_.publish_errors;
            });
        if (full)
            return read_kept(user);
        kept_takes_.erase(it);
    });
}

// Calls `f` once what is queued for connection `id` is written (at once with
// a transport that cannot tell); never if it closes first.
template <class Transport, class Broker, class Locator>
template <class F>
void basic_hub<Transport, Broker, Locator>::after_written(connection_id id, F f)
{
    if constexpr (has_when_written_v<Transport>) {
        if (const auto* handle = registry_.handle(id))
            transport_.when_written(*handle, std::function<void()>(std::move(f)));
    } else {
        (void)id;
        f();
    }
}

// A connection that was taking its user's kept messages closed: another
// connection of the user here takes them on, from the last page removed.
template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::hand_on_kept(connection_id closed, const std::string& user)
{
    auto it = kept_takes_.find(user);
    if (it == kept_takes_.end() || it->second.conn != closed)
        return;
    const auto* others = registry_.user(user);
    if (!others || others->second.members.empty())
        return void(kept_takes_.erase(it)); // kept for the user's next connection
    auto& t = it->second;
    t.key = ++recovery_keys_;
    t.conn = registry_.target_at(others->second.members.front()).id;
    t.resumed_user = false; // better twice than never: frames carry their ids
    t.page.clear();
    read_kept(user);
}

template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::close(connection_id id)
{
    cancel_recoveries(id, nullptr);
    const bool taking = !kept_takes_.empty() && registry_.contains(id);
    const std::string user = taking ? std::string(registry_.user_of(id)) : std::string();
    registry_.close(id, [this](detail::list_kind kind, std::string_view name) { last_gone(kind, name); });
    if (taking)
        hand_on_kept(id, user);
}

// The last local member of a room, or connection of a user, is gone.
template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::last_gone(detail::list_kind kind, std::string_view name)
{
    if (kind == detail::list_kind::user) {
        if (routes_users_by_channel())
            broker_.unsubscribe(user_channel_.name(name));
        locator_.user_offline(name);
    } else if (routes_rooms_by_channel()) {
        broker_.unsubscribe(room_channel_.name(name));
    }
}

template <class Transport, class Broker, class Locator>
std::error_code basic_hub<Transport, Broker, Locator>::allowed(connection_id id, action what,
                                                               std::string_view target) const
{
    if (!registry_.contains(id))
        return error::unknown_connection;
    if (options_.authorize && !options_.authorize(id, registry_.user_of(id), what, target))
        return error::forbidden;
    return {};
}

template <class Transport, class Broker, class Locator>
std::error_code basic_hub<Transport, Broker, Locator>::join(connection_id id, std::string_view room)
{
    if (auto ec = validate_name(room, options_.max_name_length))
        return ec;
    if (auto ec = allowed(id, action::join, room))
        return ec;
    auto result = registry_.join(id, room, false, max_rooms());
    if (result == detail::join_result::unknown)
        return error::unknown_connection;
    if (result == detail::join_result::full)
        return error::too_many_rooms;
    if (result == detail::join_result::created && routes_rooms_by_channel())
        broker_.subscribe(room_channel_.name(room));
    return {};
}

template <class Transport, class Broker, class Locator>
std::error_code basic_hub<Transport, Broker, Locator>::join(connection_id id, std::string_view room,
                                                            std::string_view last_id, recovery_handler done)
{
    static_assert(has_history_v<Broker>, "this Broker keeps no history");
    if (auto ec = validate_name(room, options_.max_name_length))
        return ec;
    stream_id after;
    if (!parse_stream_id(last_id, after))
        return error::invalid_stream_id;
    if (!routes_rooms_by_channel())
        return std::make_error_code(std::errc::operation_not_supported);
    if (auto ec = allowed(id, action::join, room))
        return ec;
    auto result = registry_.join(id, room, true, max_rooms());
    if (result == detail::join_result::unknown)
        return error::unknown_connection;
    if (result == detail::join_result::full)
        return error::too_many_rooms;
    if (result == detail::join_result::already)
        return {};
    const std::string channel = room_channel_.name(room);
    if (result == detail::join_result::created)
        broker_.subscribe(channel);
    start_or_activate(id, registry_.room(room), message_kind::room, channel, &after, std::move(done));
    return {};
}

template <class Transport, class Broker, class Locator>
std::error_code basic_hub<Transport, Broker, Locator>::leave(connection_id id, std::string_view room)
{
    if (auto ec = validate_name(room, options_.max_name_length))
        return ec;
    if (!registry_.contains(id))
        return error::unknown_connection;
    if (auto* list = registry_.room(room))
        cancel_recoveries(id, list);
    if (registry_.leave(id, room))
        last_gone(detail::list_kind::room, room);
    return {};
}

// ---- Sending ----------------------------------------------------------------

template <class Transport, class Broker, class Locator>
std::error_code basic_hub<Transport, Broker, Locator>::broadcast(std::string_view payload, connection_id exclude)
{
    return publish(own_global_, message_kind::broadcast, {}, payload, exclude);
}

template <class Transport, class Broker, class Locator>
std::error_code basic_hub<Transport, Broker, Locator>::send_to_room(std::string_view room, std::string_view payload,
                                                                    connection_id exclude)
{
    if (auto ec = validate_name(room, options_.max_name_length))
        return ec;
    if (routes_rooms_by_channel())
        room_channel_.name(room, channel_);
    else
        channel_ = own_global_;
    return publish(channel_, message_kind::room, room, payload, exclude);
}

template <class Transport, class Broker, class Locator>
std::error_code basic_hub<Transport, Broker, Locator>::send_to_user(std::string_view user, std::string_view payload,
                                                                    connection_id exclude)
{
    if (auto ec = validate_name(user, options_.max_name_length))
        return ec;
    switch (options_.direct) {
    case direct_routing::per_user_channel:
        user_channel_.name(user, channel_);
        return publish(channel_, message_kind::user, user, payload, exclude);
    case direct_routing::shared_channel:
        return publish(options_.shared_direct_channel, message_kind::user, user, payload, exclude);
    case direct_routing::instance_channel:
        break;
    }
    if (payload.size() > options_.max_payload)
        return error::payload_too_large;
    encode(message_kind::user, user, payload, exclude);
    send_to_host(user);
    return {};
}

// Option B: where is the user? Its host's channel, or kept while it is offline.
template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::send_to_host(std::string_view user)
{
    locator_.where(user, [this, life = std::weak_ptr<char>(life_), user = std::string(user),
                          data = encoded_](std::error_code ec, std::string_view host) {
        if (life.expired())
            return;
        if (!ec && !host.empty()) {
            ++stats_.published;
            ++stats_.sent_to_host;
            broker_.publish(instance_channel_.name(host), data, [this, life](std::error_code e) {
                if (e && !life.expired())
                    ++stats_.publish_errors;
            });
            return;
        }
        if constexpr (has_offline_messages_v<Broker>) {
            if (!ec) {
                ++stats_.kept_offline;
                broker_.store_offline(user, data, [this, life](std::error_code e) {
                    if (e && !life.expired())
                        ++stats_.publish_errors;
                });
                return;
            }
        }
        ++stats_.undeliverable;
    });
}

template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::encode(message_kind kind, std::string_view target,
                                                   std::string_view payload, connection_id exclude)
{
    encoded_.clear();
    backplane::encode(envelope{kind, options_.instance_id, target, exclude, ++sequence_, payload}, encoded_);
}

template <class Transport, class Broker, class Locator>
std::error_code basic_hub<Transport, Broker, Locator>::publish(std::string_view channel, message_kind kind,
                                                               std::string_view target, std::string_view payload,
                                                               connection_id exclude)
{
    if (payload.size() > options_.max_payload)
        return error::payload_too_large;
    encode(kind, target, payload, exclude);
    ++stats_.published;
    auto done = [this](std::error_code ec) {
        if (ec)
            ++stats_.publish_errors;
    };
    if constexpr (has_publish_direct_v<Broker>) {
        if (kind == message_kind::user && routes_users_by_channel()) { // kept if nobody receives it
            broker_.publish_direct(channel, target, encoded_, std::move(done));
            return {};
        }
    }
    broker_.publish(channel, encoded_, std::move(done));
    return {};
}

// ---- Queries ------------------------------------------------------------------

template <class Transport, class Broker, class Locator>
template <class CompletionToken>
auto basic_hub<Transport, Broker, Locator>::async_where(std::string_view user, CompletionToken&& token)
{
    return asio::async_initiate<CompletionToken, void(std::error_code, std::string)>(
        [this](auto handler, std::string who) {
            detail::completion<decltype(handler)> complete(std::move(handler), get_executor());
            if (auto ec = validate_name(who, options_.max_name_length))
                return asio::post(get_executor(), [complete, ec] { complete(ec, std::string()); });
            locator_.where(who, [complete](std::error_code ec, std::string_view host) {
                complete(ec, std::string(host));
            });
        },
        token, std::string(user));
}

template <class Transport, class Broker, class Locator>
template <class CompletionToken>
auto basic_hub<Transport, Broker, Locator>::async_online(std::string_view cursor, std::size_t limit,
                                                         CompletionToken&& token)
{
    return asio::async_initiate<CompletionToken, void(std::error_code, online_page)>(
        [this](auto handler, std::string from, std::size_t n) {
            detail::completion<decltype(handler)> complete(std::move(handler), get_executor());
            locator_.online(from, n, [complete](std::error_code ec, online_page page) { complete(ec, std::move(page)); });
        },
        token, std::string(cursor), limit);
}

template <class Transport, class Broker, class Locator>
template <class CompletionToken>
auto basic_hub<Transport, Broker, Locator>::async_shutdown(CompletionToken&& token)
{
    return asio::async_initiate<CompletionToken, void()>(
        [this](auto handler) {
            detail::completion<decltype(handler)> complete(std::move(handler), get_executor());
            if constexpr (has_shutdown_v<Locator>)
                locator_.shutdown([complete] { complete(); });
            else
                asio::post(get_executor(), [complete] { complete(); });
        },
        token);
}

// ---- Delivery -------------------------------------------------------------------

template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::on_message(std::string_view /*channel*/, std::string_view broker_id,
                                                       std::string_view data)
{
    envelope e;
    if (decode(data, e)) {
        ++stats_.malformed;
        return;
    }
    ++stats_.received;
    list_node* list = nullptr;
    switch (e.kind) {
    case message_kind::broadcast: list = &registry_.all(); break;
    case message_kind::room: list = registry_.room(e.target); break;
    case message_kind::user: list = registry_.user(e.target); break;
    }
    auto recovering = list && !recoveries_.empty() ? recoveries_.find(list) : recoveries_.end();
    if (!list || (list->second.members.empty() && recovering == recoveries_.end())) {
        ++stats_.unrouted;
        return;
    }
    const connection_id skip = e.origin == options_.instance_id ? e.exclude : no_connection;
    const frame f = make_frame(e, broker_id);
    if (recovering != recoveries_.end())
        advance_recoveries(recovering, broker_id, f, skip);
    deliver(list->second.members, f, skip);
    // Catch-ups that reached the live flow join it after this message,
    // which they have had already; the dead go last, as closing edits lists.
    for (const auto& [id, node] : activated_)
        registry_.activate(id, node);
    activated_.clear();
    close_dead();
}

template <class Transport, class Broker, class Locator>
typename basic_hub<Transport, Broker, Locator>::frame
basic_hub<Transport, Broker, Locator>::make_frame(const envelope& e, std::string_view broker_id, bool offline)
{
    if (!options_.build_frame)
        return transport_.make_frame(e.payload);
    frame_bytes_.clear();
    options_.build_frame({e.kind, e.target, e.origin, e.sequence, broker_id, e.payload, offline}, frame_bytes_);
    return transport_.make_frame(frame_bytes_);
}

// The fast path: one frame, every target, nothing allocated per target.
template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::deliver(const std::vector<detail::slot_index>& targets, const frame& f,
                                                    connection_id skip)
{
    std::uint64_t delivered = 0, pressured = 0;
    for (const auto index : targets) {
        const auto& t = registry_.target_at(index);
        if (t.id == skip)
            continue;
        switch (transport_.send(t.handle, f)) {
        case send_status::ok: ++delivered; break;
        case send_status::backpressure: ++delivered; ++pressured; break;
        case send_status::dropped: dead_.push_back(t.id); break;
        }
    }
    stats_.deliveries += delivered;
    stats_.backpressure += pressured;
}

// Sends one frame to one connection, outside the fast path.
template <class Transport, class Broker, class Locator>
send_status basic_hub<Transport, Broker, Locator>::send_one(connection_id id, const frame& f)
{
    const auto* handle = registry_.handle(id);
    if (!handle)
        return send_status::dropped;
    const auto status = transport_.send(*handle, f);
    switch (status) {
    case send_status::ok: ++stats_.deliveries; break;
    case send_status::backpressure: ++stats_.deliveries; ++stats_.backpressure; break;
    case send_status::dropped: dead_.push_back(id); break;
    }
    return status;
}

template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::close_dead()
{
    for (const auto id : dead_)
        close(id);
    stats_.dropped_connections += dead_.size();
    dead_.clear();
}

// ---- Catch-up from history ------------------------------------------------------
//
// A recovering connection is a pending member of one list, with a
// detail::catch_up that says, page after page and live message after live
// message, what it gets and when it goes live.

template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::start_or_activate(connection_id id, list_node* list, message_kind kind,
                                                              std::string_view channel, const stream_id* after,
                                                              recovery_handler done)
{
    if (!after) {
        registry_.activate(id, list);
        return;
    }
    auto r = std::make_unique<recovery>(recovery{++recovery_keys_, id, list, std::string(channel),
                                                 detail::catch_up(*after), {}, std::move(done), {}, 0, false, {}});
    r->result.kind = kind;
    r->result.target = kind == message_kind::broadcast ? std::string_view() : std::string_view(list->first);
    auto& rec = *r;
    recoveries_[list].push_back(std::move(r));
    read_page(rec);
}

template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::read_page(recovery& r)
{
    if constexpr (has_history_v<Broker>)
        broker_.history(r.channel, r.seam.cursor().to_string(), options_.replay_page,
                        [this, key = r.key, list = r.list](std::error_code ec, history_page page) {
                            on_page(key, list, ec, std::move(page));
                        });
}

template <class Transport, class Broker, class Locator>
typename basic_hub<Transport, Broker, Locator>::recovery*
basic_hub<Transport, Broker, Locator>::find_recovery(std::uint64_t key, list_node* list)
{
    auto it = recoveries_.find(list);
    if (it == recoveries_.end())
        return nullptr;
    for (auto& r : it->second)
        if (r->key == key)
            return r.get();
    return nullptr;
}

template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::on_page(std::uint64_t key, list_node* list, std::error_code ec,
                                                    history_page page)
{
    recovery* r = find_recovery(key, list);
    if (!r)
        return; // the connection left or closed meanwhile
    r->page_full = page.entries.size() >= options_.replay_page;
    r->page_error = ec;
    r->page = std::move(page);
    r->next = 0;
    replay(*r);
}

// Sends what is left of the page, pausing where the transport reports
// backpressure; once the page is written, reads the next or goes live.
template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::replay(recovery& r)
{
    const connection_id conn = r.conn;
    auto again = [this, life = std::weak_ptr<char>(life_), key = r.key, list = r.list](bool read) {
        return [this, life, key, list, read] {
            if (life.expired())
                return;
            if (recovery* found = find_recovery(key, list))
                read ? read_page(*found) : replay(*found);
        };
    };
    while (r.next < r.page.entries.size()) {
        const auto& entry = r.page.entries[r.next++];
        envelope e;
        stream_id id;
        if (!parse_stream_id(entry.id, id) || decode(entry.data, e) || !r.seam.take(id))
            continue;
        if (e.origin == options_.instance_id && e.exclude == conn)
            continue;
        const auto status = send_one(conn, make_frame(e, entry.id));
        if (!dead_.empty())
            return close_dead(); // the connection is gone, and its catch-up with it
        ++stats_.replayed;
        if (status == send_status::backpressure)
            return after_written(conn, again(false));
    }
    r.page.entries.clear();
    const auto next = r.seam.page_done(r.page_full, r.page.cursor_found, !!r.page_error);
    if (next == detail::catch_up::next::read_again)
        return after_written(conn, again(true));
    r.result.recovered = r.seam.recovered();
    r.result.replayed = r.seam.replayed();
    r.result.error = r.page_error;
    auto done = std::move(r.done);
    const auto result = r.result;
    if (next == detail::catch_up::next::go_live)
        finish(r);
    if (done)
        done(result);
}

// Called for each live message on a list with catch-ups under way, before
// its members receive it.
template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::advance_recoveries(typename recovery_map::iterator it,
                                                               std::string_view broker_id, const frame& f,
                                                               connection_id skip)
{
    stream_id id;
    if (!parse_stream_id(broker_id, id))
        return;
    auto& list = it->second;
    for (auto& r : list) {
        if (r->seam.on_live(id) != detail::catch_up::action::deliver_go_live)
            continue;
        if (r->conn != skip)
            send_one(r->conn, f);
        activated_.emplace_back(r->conn, r->list);
        r->conn = no_connection; // finished: removed below
    }
    list.erase(std::remove_if(list.begin(), list.end(), [](const auto& r) { return r->conn == no_connection; }),
               list.end());
    if (list.empty())
        recoveries_.erase(it);
}

// The connection goes live now.
template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::finish(recovery& r)
{
    registry_.activate(r.conn, r.list);
    remove_recoveries(r.list, [&](const recovery& x) { return &x == &r; });
}

// Drops the catch-ups of `id` (in `list` only, if given), before the
// registry forgets the memberships they belong to.
template <class Transport, class Broker, class Locator>
void basic_hub<Transport, Broker, Locator>::cancel_recoveries(connection_id id, const list_node* list)
{
    if (recoveries_.empty())
        return;
    std::vector<const list_node*> lists;
    for (auto& [node, recs] : recoveries_)
        if (!list || node == list)
            lists.push_back(node);
    for (auto* node : lists)
        remove_recoveries(node, [&](const recovery& r) { return r.conn == id; });
}

template <class Transport, class Broker, class Locator>
template <class Pred>
void basic_hub<Transport, Broker, Locator>::remove_recoveries(const list_node* list, Pred pred)
{
    auto it = recoveries_.find(list);
    if (it == recoveries_.end())
        return;
    auto& recs = it->second;
    recs.erase(std::remove_if(recs.begin(), recs.end(), [&](const auto& r) { return pred(*r); }), recs.end());
    if (recs.empty())
        recoveries_.erase(it);
}

template <class Transport, class Broker, class Locator>
std::string basic_hub<Transport, Broker, Locator>::random_instance_id()
{
    std::random_device rd;
    std::uniform_int_distribution<std::uint64_t> dist;
    const std::uint64_t v = dist(rd);
    static const char hex[] = "0123456789abcdef";
    std::string id(16, '0');
    for (int i = 0; i < 16; ++i)
        id[i] = hex[(v >> (4 * i)) & 0xf];
    return id;
}

} // namespace backplane

#endif
