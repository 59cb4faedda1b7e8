
seed-sip8-
a84b4c76e66710@gw.example.com"+14155550123en-USÒ
0Customer was charged twice for the March invoice
billing.dispute…k?)
account_numberACC-99887766account #

issue_typedouble chargestring"3/I was charged twice, I want to talk to a person")%I'm connecting you with a specialist.*-
looked up the invoicetwo payments found2asked for a person:Refund likely@"sip:agent@127.0.0.1:5070(