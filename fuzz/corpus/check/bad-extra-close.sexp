(domain x))
)]
