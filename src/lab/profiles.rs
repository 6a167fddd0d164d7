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

/// The profile's schema and data, run as the app's role.
pub fn sql(seed: &LabSeed) -> Result<String> {
    let rows = seed.rows.max(1);
    let mut sql = match seed.profile.as_str() {
        "shop" => shop(rows),
        "blog" => blog(rows),
        "crm" => crm(rows),
        "events" => events(rows, seed.payload.max(16)),
        other => bail!("unknown seed profile \"{other}\" (profiles: shop, blog, crm, events)"),
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
