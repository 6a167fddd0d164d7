//! Schema profiles the lab seeds fixture databases with: realistic small apps with sequences,
//! foreign keys, views, functions, an extension and generated data of a chosen size.
//! Data is deterministic (no random()) so two seeds of the same fleet hold the same rows.

use color_eyre::eyre::{Result, bail};

use crate::inventory::LabSeed;

/// Extensions a profile needs, created by the admin before the app role builds its schema.
pub fn extensions(profile: &str) -> &'static [&'static str] {
    match profile {
        "shop" => &["hstore"],
        "crm" => &["pg_trgm"],
        _ => &[],
    }
}

/// What a superuser creates for the app before the app's role builds its schema (and then
/// gives to the app's role): objects the role could not create itself.
pub fn admin_sql(profile: &str, role: &str) -> Option<String> {
    let role = crate::postgres::ident(role);
    match profile {
        "privileged" => Some(format!(
            r#"
CREATE TYPE public.label;
CREATE FUNCTION public.label_in(cstring) RETURNS public.label LANGUAGE internal IMMUTABLE STRICT AS 'textin';
CREATE FUNCTION public.label_out(public.label) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'textout';
CREATE TYPE public.label (INPUT = public.label_in, OUTPUT = public.label_out, LIKE = text);
CREATE FUNCTION public.fast_upper(text) RETURNS text LANGUAGE internal IMMUTABLE STRICT AS 'upper';
ALTER TYPE public.label OWNER TO {role};
ALTER FUNCTION public.label_in(cstring) OWNER TO {role};
ALTER FUNCTION public.label_out(public.label) OWNER TO {role};
ALTER FUNCTION public.fast_upper(text) OWNER TO {role};
"#
        )),
        _ => None,
    }
}

/// Database settings a profile's app sets beyond the lab's usual ones.
pub fn database_settings(profile: &str) -> &'static [(&'static str, &'static str)] {
    match profile {
        // Unqualified names in the app's own sessions resolve through it; the index on
        // app.fold() does not (the function pins its own search_path).
        "catalog" => &[("search_path", "public, app, ext")],
        _ => &[],
    }
}

/// A table name of exactly 63 bytes (NAMEDATALEN - 1) with a double quote, spaces, a newline
/// and non-ASCII letters: every quoting path of dump, restore and verification must hold it.
pub fn odd_table_name() -> String {
    let mut name = String::from("Mitglieder \"Zürich\"\nÄnderungen ");
    while name.len() < 63 {
        name.push('x');
    }
    name
}

/// The profile's schema and data, run as the app's role.
pub fn sql(seed: &LabSeed) -> Result<String> {
    let rows = seed.rows.max(1);
    let mut sql = match seed.profile.as_str() {
        "shop" => shop(rows),
        "blog" => blog(rows),
        "crm" => crm(rows),
        "events" => events(rows, seed.payload.max(16)),
        "catalog" => catalog(rows),
        "legacy" => legacy(rows),
        "privileged" => privileged(rows),
        other => bail!(
            "unknown seed profile \"{other}\" (profiles: shop, blog, crm, events, catalog, legacy, privileged)"
        ),
    };
    if seed.btree_straddle {
        sql.push_str(&btree_straddle());
    }
    Ok(sql)
}

fn shop(rows: u64) -> String {
    let customers = (rows / 4).max(5);
    let products = (rows / 20).max(10);
    format!(
        r#"
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE products (
    id serial PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    title text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    attributes hstore
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    placed_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'cancelled'))
);
CREATE TABLE order_items (
    order_id bigint NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    product_id integer NOT NULL REFERENCES products(id),
    quantity integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_placed_idx ON orders (placed_at);
CREATE SEQUENCE invoice_number_seq START 100000;

INSERT INTO customers (email, name, created_at)
SELECT 'customer' || g || '@example.ch', 'Customer ' || g,
       timestamptz '2019-01-01 00:00+00' + g * interval '37 minutes'
FROM generate_series(1, {customers}) g;
INSERT INTO products (sku, title, price_cents, attributes)
SELECT 'SKU-' || lpad(g::text, 6, '0'), 'Product ' || g, 100 + (g * 7919) % 90000,
       hstore(ARRAY['color', 'size'], ARRAY[(ARRAY['red','green','blue','black'])[1 + g % 4], (ARRAY['S','M','L','XL'])[1 + g % 4]])
FROM generate_series(1, {products}) g;
INSERT INTO orders (customer_id, placed_at, status)
SELECT 1 + (g * 7919) % {customers}, timestamptz '2021-01-01 00:00+00' + g * interval '11 minutes',
       (ARRAY['new','paid','shipped','cancelled'])[1 + g % 4]
FROM generate_series(1, {rows}) g;
INSERT INTO order_items (order_id, product_id, quantity)
SELECT o, 1 + (o * 31 + k * 17) % {products}, 1 + (o + k) % 5
FROM generate_series(1, {rows}) o, generate_series(1, 3) k
WHERE k <= 1 + o % 3;
SELECT setval('invoice_number_seq', 100000 + {rows});

CREATE VIEW order_totals AS
SELECT o.id, o.customer_id, sum(p.price_cents * i.quantity) AS total_cents
FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
GROUP BY o.id, o.customer_id;
CREATE FUNCTION next_invoice_number() RETURNS bigint LANGUAGE sql AS $$ SELECT nextval('invoice_number_seq') $$;
"#
    )
}

fn blog(rows: u64) -> String {
    let authors = (rows / 50).max(3);
    let comments = rows * 3;
    format!(
        r#"
CREATE TABLE authors (
    id serial PRIMARY KEY,
    handle varchar(64) NOT NULL UNIQUE,
    display_name text NOT NULL
);
CREATE TABLE posts (
    id bigserial PRIMARY KEY,
    author_id integer NOT NULL REFERENCES authors(id),
    slug text NOT NULL UNIQUE,
    title text NOT NULL,
    body text NOT NULL,
    published_at timestamptz
);
CREATE TABLE comments (
    id bigserial PRIMARY KEY,
    post_id bigint NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    body text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE redirects (
    id serial PRIMARY KEY,
    source_url text NOT NULL,
    target_post bigint REFERENCES posts(id)
);
CREATE INDEX posts_published_idx ON posts (published_at DESC);
CREATE INDEX comments_post_idx ON comments (post_id);
CREATE INDEX redirects_source_idx ON redirects (source_url);

INSERT INTO authors (handle, display_name)
SELECT 'author' || g, 'Author ' || g FROM generate_series(1, {authors}) g;
INSERT INTO posts (author_id, slug, title, body, published_at)
SELECT 1 + g % {authors}, 'post-' || g, 'Post number ' || g,
       repeat('Lorem ipsum dolor sit amet ' || g || '. ', 1 + g % 12),
       CASE WHEN g % 10 = 0 THEN NULL ELSE timestamptz '2018-01-01 00:00+00' + g * interval '3 hours' END
FROM generate_series(1, {rows}) g;
INSERT INTO comments (post_id, body, created_at)
SELECT 1 + (g * 13) % {rows}, 'Comment ' || g || ': ' || md5(g::text),
       timestamptz '2018-02-01 00:00+00' + g * interval '47 minutes'
FROM generate_series(1, {comments}) g;
INSERT INTO redirects (source_url, target_post)
SELECT '/old/' || g || '/' || md5(g::text), g FROM generate_series(1, least({rows}, 200)) g;

CREATE VIEW recent_posts AS
SELECT p.id, p.slug, p.title, a.display_name AS author, p.published_at
FROM posts p JOIN authors a ON a.id = p.author_id
WHERE p.published_at IS NOT NULL
ORDER BY p.published_at DESC;
CREATE FUNCTION comment_count(post bigint) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM comments WHERE post_id = post $$;
"#
    )
}

fn crm(rows: u64) -> String {
    let companies = (rows / 10).max(3);
    let activities = rows * 2;
    format!(
        r#"
CREATE TABLE companies (
    id serial PRIMARY KEY,
    name text NOT NULL,
    country char(2) NOT NULL
);
CREATE TABLE contacts (
    id bigserial PRIMARY KEY,
    company_id integer REFERENCES companies(id),
    full_name text NOT NULL,
    email text,
    phone text,
    notes text
);
CREATE TABLE activities (
    id bigserial PRIMARY KEY,
    contact_id bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('call', 'mail', 'meeting')),
    happened_at timestamptz NOT NULL,
    summary text
);
CREATE INDEX contacts_name_trgm_idx ON contacts USING gin (full_name gin_trgm_ops);
CREATE INDEX contacts_email_idx ON contacts (lower(email));
CREATE INDEX activities_contact_idx ON activities (contact_id, happened_at);
CREATE SEQUENCE ticket_seq;

INSERT INTO companies (name, country)
SELECT 'Company ' || g || ' AG', (ARRAY['CH','DE','AT','FR','IT'])[1 + g % 5]
FROM generate_series(1, {companies}) g;
INSERT INTO contacts (company_id, full_name, email, phone, notes)
SELECT 1 + g % {companies}, (ARRAY['Anna','Beat','Claudia','Dario','Elena','Fritz'])[1 + g % 6] || ' ' ||
       (ARRAY['Müller','Meier','Schmid','Keller','Weber','Huber','Rossi'])[1 + g % 7] || ' ' || g,
       'contact' || g || '@example.com', '+41 44 ' || lpad(g::text, 7, '0'),
       CASE WHEN g % 3 = 0 THEN 'Prefers mail. Key account since ' || (2000 + g % 20) END
FROM generate_series(1, {rows}) g;
INSERT INTO activities (contact_id, kind, happened_at, summary)
SELECT 1 + (g * 17) % {rows}, (ARRAY['call','mail','meeting'])[1 + g % 3],
       timestamptz '2022-01-01 00:00+00' + g * interval '29 minutes', 'Follow-up ' || md5(g::text)
FROM generate_series(1, {activities}) g;
SELECT setval('ticket_seq', {activities});

CREATE VIEW contact_activity AS
SELECT c.id, c.full_name, count(a.id) AS activities, max(a.happened_at) AS last_contact
FROM contacts c LEFT JOIN activities a ON a.contact_id = c.id
GROUP BY c.id, c.full_name;
"#
    )
}

fn events(rows: u64, payload: u32) -> String {
    let devices = (rows / 1000).max(5);
    // md5 hex repeated to the payload length: incompressible enough at row sizes under 2 kB.
    let reps = payload.div_ceil(32);
    format!(
        r#"
CREATE TABLE devices (
    id serial PRIMARY KEY,
    serial text NOT NULL UNIQUE,
    model text NOT NULL
);
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    device_id integer NOT NULL REFERENCES devices(id),
    recorded_at timestamptz NOT NULL,
    kind smallint NOT NULL,
    payload jsonb NOT NULL,
    note text
);

INSERT INTO devices (serial, model)
SELECT 'DEV-' || lpad(g::text, 8, '0'), (ARRAY['T100','T200','X9'])[1 + g % 3]
FROM generate_series(1, {devices}) g;
INSERT INTO events (device_id, recorded_at, kind, payload, note)
SELECT 1 + g % {devices}, timestamptz '2023-01-01 00:00+00' + g * interval '2 seconds', (g % 7)::smallint,
       jsonb_build_object('seq', g, 'temp', 15 + (g % 200) / 10.0, 'ok', g % 13 <> 0),
       substr(repeat(md5(g::text), {reps}), 1, {payload})
FROM generate_series(1, {rows}) g;
CREATE INDEX events_device_time_idx ON events (device_id, recorded_at);

CREATE MATERIALIZED VIEW daily_counts AS
SELECT device_id, date_trunc('day', recorded_at) AS day, count(*) AS events
FROM events GROUP BY 1, 2;
"#
    )
}

/// One long tracking URL in the btree-indexed `redirects.source_url`: it compresses under the
/// 2,704-byte btree limit with pglz (13's only method) but not with lz4 (15's service tier).
fn btree_straddle() -> String {
    format!(
        "\nINSERT INTO redirects (source_url) SELECT {};\n",
        BTREE_STRADDLE_EXPR
    )
}

/// 1,400 four-character words from a 16-word vocabulary in an md5-driven order: 5,600 bytes
/// raw, 1,643 with pglz, 3,677 with lz4 (measured on 13.23 and 15.18; index row 3,696 bytes).
/// pglz searches every earlier occurrence for the longest match and codes matches in 2 bytes;
/// lz4 takes the most recent one and spends 3+, which buys nothing on 4-byte words.
pub const BTREE_STRADDLE_EXPR: &str = "(SELECT string_agg(substr(md5((get_byte(decode(md5(i::text), 'hex'), 0) % 16)::text), 1, 4), '' ORDER BY i) FROM generate_series(1, 1400) AS i)";

/// Every kind of object pg_dump carries that a restore as the app's role can create (issue
/// 13): schemas, an extension in its own schema, ICU and libc collations, enum and domain,
/// identity and generated columns, RLS with policies, a range-partitioned table, inheritance,
/// an unlogged table, a table without columns, a 63-byte odd identifier, an exclusion
/// constraint, rules, triggers in every enabled mode, populated and unpopulated materialized
/// views, large objects with a comment and an ACL, comments, column and table ACLs, default
/// privileges, a statistics object, and an index on a function that pins its search_path.
fn catalog(rows: u64) -> String {
    let odd = crate::postgres::ident(&odd_table_name());
    format!(
        r#"
CREATE SCHEMA ext;
CREATE EXTENSION pg_trgm SCHEMA ext;
CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO PUBLIC;
COMMENT ON SCHEMA app IS 'The club''s own objects';
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO PUBLIC;
CREATE COLLATION app.german_icu (provider = icu, locale = 'de-CH');
CREATE COLLATION app.bytewise (provider = libc, locale = 'C');
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%');
CREATE FUNCTION app.squash(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT regexp_replace(t, '\s+', '', 'g') $$;
CREATE FUNCTION app.fold(t text) RETURNS text LANGUAGE sql IMMUTABLE SET search_path = app, pg_catalog AS $$ SELECT squash(lower(t)) $$;

CREATE TABLE app.members (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    handle text COLLATE app.bytewise NOT NULL,
    display_name text COLLATE app.german_icu NOT NULL,
    email app.email,
    mood app.mood NOT NULL DEFAULT 'ok',
    handle_folded text GENERATED ALWAYS AS (lower(handle)) STORED,
    tenant integer NOT NULL
);
INSERT INTO app.members (handle, display_name, email, mood, tenant)
SELECT 'member ' || g, (ARRAY['Zoë','Ärger','Øre','Émile','Straße'])[1 + g % 5] || ' ' || g, 'm' || g || '@example.ch',
       (ARRAY['sad','ok','happy']::app.mood[])[1 + g % 3], 1 + g % 4
FROM generate_series(1, {rows}) g;
CREATE INDEX members_name_trgm_idx ON app.members USING gin (display_name ext.gin_trgm_ops);
CREATE UNIQUE INDEX members_fold_idx ON app.members (app.fold(handle));
CREATE STATISTICS app.members_stats (dependencies) ON tenant, mood FROM app.members;
ALTER TABLE app.members ENABLE ROW LEVEL SECURITY;
CREATE POLICY members_by_tenant ON app.members USING (tenant = current_setting('app.tenant', true)::integer);
CREATE POLICY members_insert ON app.members AS RESTRICTIVE FOR INSERT WITH CHECK (tenant > 0);
COMMENT ON TABLE app.members IS 'People of the club; each tenant sees its own';
COMMENT ON COLUMN app.members.display_name IS 'Sorted the Swiss German way (ICU)';
COMMENT ON POLICY members_by_tenant ON app.members IS 'Tenants see their own members';
GRANT UPDATE (display_name) ON app.members TO PUBLIC;
REVOKE EXECUTE ON FUNCTION app.squash(text) FROM PUBLIC;

CREATE TABLE app.visits (
    visited_on date NOT NULL,
    member_id bigint NOT NULL,
    note text
) PARTITION BY RANGE (visited_on);
CREATE TABLE app.visits_2023 PARTITION OF app.visits FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE app.visits_2024 PARTITION OF app.visits FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE app.visits_other PARTITION OF app.visits DEFAULT;
INSERT INTO app.visits SELECT date '2022-10-01' + (g % 900), 1 + g % {rows}, 'visit ' || g FROM generate_series(1, {rows} * 2) g;
CREATE INDEX visits_member_idx ON app.visits (member_id);

CREATE TABLE app.notes (id integer NOT NULL, body text);
CREATE TABLE app.pinned_notes (pinned_at timestamptz NOT NULL) INHERITS (app.notes);
INSERT INTO app.notes SELECT g, 'note ' || g FROM generate_series(1, 100) g;
INSERT INTO app.pinned_notes SELECT g, 'pinned ' || g, timestamptz '2024-01-01 00:00+00' + g * interval '1 day' FROM generate_series(101, 130) g;
CREATE FUNCTION app.stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.body := coalesce(NEW.body, ''); RETURN NEW; END $$;
CREATE TRIGGER notes_stamp BEFORE INSERT ON app.notes FOR EACH ROW EXECUTE FUNCTION app.stamp();
CREATE TRIGGER notes_replica BEFORE UPDATE ON app.notes FOR EACH ROW EXECUTE FUNCTION app.stamp();
CREATE TRIGGER notes_always AFTER DELETE ON app.notes FOR EACH ROW EXECUTE FUNCTION app.stamp();
CREATE TRIGGER notes_off BEFORE INSERT ON app.pinned_notes FOR EACH ROW EXECUTE FUNCTION app.stamp();
ALTER TABLE app.notes ENABLE REPLICA TRIGGER notes_replica;
ALTER TABLE app.notes ENABLE ALWAYS TRIGGER notes_always;
ALTER TABLE app.pinned_notes DISABLE TRIGGER notes_off;
CREATE RULE notes_keep_negative AS ON DELETE TO app.notes WHERE old.id < 0 DO INSTEAD NOTHING;
COMMENT ON TRIGGER notes_always ON app.notes IS 'Fires on replicas too';

CREATE UNLOGGED TABLE app.session_cache (k text PRIMARY KEY, v text NOT NULL);
INSERT INTO app.session_cache SELECT 'session-' || g, md5(g::text) FROM generate_series(1, 50) g;
CREATE TABLE app.heartbeat ();
INSERT INTO app.heartbeat SELECT FROM generate_series(1, 3);
CREATE TABLE app.{odd} ("Spalte ""mit"" Leer zeichen" text, n integer);
INSERT INTO app.{odd} SELECT 'wert ' || g, g FROM generate_series(1, 20) g;
CREATE TABLE app.room_bookings (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    during tstzrange NOT NULL,
    EXCLUDE USING gist (during WITH &&)
);
INSERT INTO app.room_bookings (during)
SELECT tstzrange(timestamptz '2024-01-01 08:00+00' + g * interval '2 hours', timestamptz '2024-01-01 09:00+00' + g * interval '2 hours')
FROM generate_series(1, 200) g;
CREATE SEQUENCE app.ticket_seq AS integer START 10 INCREMENT 5;
SELECT setval('app.ticket_seq', 555);

CREATE TABLE app.attachments (id serial PRIMARY KEY, title text NOT NULL, blob oid NOT NULL);
INSERT INTO app.attachments (title, blob)
SELECT 'scan ' || g, lo_from_bytea(0, convert_to(repeat('page ' || g || ' ', g * 400), 'UTF8')) FROM generate_series(1, 6) g;
INSERT INTO app.attachments (title, blob) VALUES ('empty', lo_from_bytea(0, ''::bytea));
DO $$
DECLARE o oid;
BEGIN
    o := lo_from_bytea(0, decode(repeat(md5('big'), 8192), 'hex'));
    INSERT INTO app.attachments (title, blob) VALUES ('binary', o);
    EXECUTE format('COMMENT ON LARGE OBJECT %s IS %L', o, 'a binary scan');
    EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO PUBLIC', o);
END $$;

CREATE TABLE public.announcements (id serial PRIMARY KEY, title text NOT NULL, body text);
INSERT INTO public.announcements (title, body) SELECT 'Announcement ' || g, repeat('Vereinsnews ', g) FROM generate_series(1, 12) g;
CREATE MATERIALIZED VIEW app.members_per_tenant AS SELECT tenant, count(*) AS members FROM app.members GROUP BY tenant;
CREATE MATERIALIZED VIEW app.mood_report AS SELECT mood, count(*) AS members FROM app.members GROUP BY mood WITH NO DATA;
CREATE VIEW app.recent_visits AS SELECT v.visited_on, m.display_name FROM app.visits v JOIN app.members m ON m.id = v.member_id WHERE v.visited_on > date '2024-06-01';
COMMENT ON MATERIALIZED VIEW app.mood_report IS 'Refreshed by hand each quarter';
"#
    )
}

/// Objects PostgreSQL 14 removed: a user-defined postfix operator, an aggregate over
/// `array_append(anyarray, anyelement)` and a prefix operator over the built-in `numeric_fac`
/// (gone in 14). All create on 13; none restores on 14+.
fn legacy(rows: u64) -> String {
    format!(
        r#"
CREATE TABLE readings (id serial PRIMARY KEY, sensor text NOT NULL, value bigint NOT NULL);
INSERT INTO readings (sensor, value) SELECT 'sensor-' || (g % 7), g * 3 FROM generate_series(1, {rows}) g;
CREATE FUNCTION doubled(bigint) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT $1 * 2 $$;
CREATE OPERATOR ### (LEFTARG = bigint, FUNCTION = doubled);
CREATE AGGREGATE array_accum (anyelement) (SFUNC = array_append, STYPE = anyarray, INITCOND = '{{}}');
CREATE OPERATOR @@@ (RIGHTARG = bigint, FUNCTION = numeric_fac);
CREATE VIEW sensor_values AS SELECT sensor, array_accum(value) AS "values" FROM readings GROUP BY sensor;
"#
    )
}

/// Uses objects only a superuser could create (made by `admin_sql`, owned by the app): a base
/// type and an internal-language function.
fn privileged(rows: u64) -> String {
    format!(
        r#"
CREATE TABLE tags (id serial PRIMARY KEY, name public.label NOT NULL, shown text NOT NULL);
INSERT INTO tags (name, shown) SELECT ('tag-' || g)::public.label, public.fast_upper('tag-' || g) FROM generate_series(1, {rows}) g;
"#
    )
}
